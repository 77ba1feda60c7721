//! A Spark answer as a plain table: Arrow record batches read into named columns of four kinds
//! (booleans, 64-bit integers, doubles, text), with a Polars `DataFrame` view for the engine.
//!
//! Integers of every width become `i64`, floats and decimals `f64` (a decimal's exact value
//! rounded once: sums of integer weights come back as decimals), strings text. Any other Arrow
//! type (dates, structs, maps…) is an error that names the column: the push-down queries cast
//! what they read, so such a type means the table is not what the run was registered with.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use polars::prelude::{Column, DataFrame, NamedFrom, Series};

use super::SparkError;

/// One column's values; `None` is SQL NULL.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    Bool(Vec<Option<bool>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Bool(v) => v.len(),
            Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `i` as a number (booleans as 0/1; text is not a number).
    pub fn f64_at(&self, i: usize) -> Option<f64> {
        match self {
            Values::Bool(v) => v[i].map(|b| b as u8 as f64),
            Values::Int(v) => v[i].map(|x| x as f64),
            Values::Float(v) => v[i],
            Values::Text(_) => None,
        }
    }

    /// The value at `i` as text (numbers printed), for keys and messages.
    pub fn text_at(&self, i: usize) -> Option<String> {
        match self {
            Values::Bool(v) => v[i].map(|b| b.to_string()),
            Values::Int(v) => v[i].map(|x| x.to_string()),
            Values::Float(v) => v[i].map(|x| x.to_string()),
            Values::Text(v) => v[i].clone(),
        }
    }

    fn extend(&mut self, other: Values) -> bool {
        match (self, other) {
            (Values::Bool(a), Values::Bool(b)) => a.extend(b),
            (Values::Int(a), Values::Int(b)) => a.extend(b),
            (Values::Float(a), Values::Float(b)) => a.extend(b),
            (Values::Text(a), Values::Text(b)) => a.extend(b),
            _ => return false,
        }
        true
    }
}

/// A result column: its name, Spark's type as Arrow names it (`Int64`, `Float64`, `Utf8`…) and
/// its values.
#[derive(Clone, Debug, PartialEq)]
pub struct SparkColumn {
    pub name: String,
    pub data_type: String,
    pub values: Values,
}

/// A whole query result, in memory (the push-down answers are cells, not rows).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparkTable {
    pub columns: Vec<SparkColumn>,
}

impl SparkTable {
    /// Rows in the table.
    pub fn height(&self) -> usize {
        self.columns.first().map_or(0, |c| c.values.len())
    }

    pub fn column(&self, name: &str) -> Option<&SparkColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column `name`, or an error naming it.
    pub fn require(&self, name: &str) -> Result<&SparkColumn, SparkError> {
        self.column(name).ok_or_else(|| SparkError::Protocol(format!("the answer has no column '{name}'")))
    }

    /// Reads record batches (all with one schema) into a table.
    pub fn from_batches(batches: &[RecordBatch]) -> Result<SparkTable, SparkError> {
        let mut table = SparkTable::default();
        for batch in batches {
            let schema = batch.schema();
            if table.columns.is_empty() {
                for f in schema.fields() {
                    let values = empty_values(f.name(), f.data_type())?;
                    table.columns.push(SparkColumn { name: f.name().clone(), data_type: f.data_type().to_string(), values });
                }
            }
            if schema.fields().len() != table.columns.len() {
                return Err(SparkError::Protocol("the answer's batches have different columns".into()));
            }
            for (col, array) in table.columns.iter_mut().zip(batch.columns()) {
                let values = read_array(&col.name, array.as_ref())?;
                if !col.values.extend(values) {
                    return Err(SparkError::Protocol(format!("column '{}' changes type between batches", col.name)));
                }
            }
        }
        Ok(table)
    }

    /// The table as a Polars `DataFrame` (Boolean, Int64, Float64 and String columns).
    pub fn to_polars(&self) -> Result<DataFrame, SparkError> {
        let cols: Vec<Column> = self
            .columns
            .iter()
            .map(|c| {
                let name = c.name.as_str().into();
                let s = match &c.values {
                    Values::Bool(v) => Series::new(name, v),
                    Values::Int(v) => Series::new(name, v),
                    Values::Float(v) => Series::new(name, v),
                    Values::Text(v) => Series::new(name, v),
                };
                s.into()
            })
            .collect();
        DataFrame::new(self.height(), cols).map_err(|e| SparkError::Protocol(format!("building the table: {e}")))
    }
}

/// The empty values of an Arrow type, or the error for a type Strata does not read.
fn empty_values(name: &str, dt: &DataType) -> Result<Values, SparkError> {
    Ok(match dt {
        DataType::Boolean => Values::Bool(vec![]),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Values::Int(vec![]),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Values::Int(vec![]),
        DataType::Float32 | DataType::Float64 | DataType::Decimal128(..) => Values::Float(vec![]),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => Values::Text(vec![]),
        other => return Err(SparkError::UnsupportedType { column: name.to_string(), data_type: other.to_string() }),
    })
}

fn ints<T: arrow_array::ArrowPrimitiveType>(a: &dyn Array, f: impl Fn(T::Native) -> Option<i64>) -> Result<Vec<Option<i64>>, ()> {
    a.as_primitive::<T>().iter().map(|v| v.map_or(Ok(None), |x| f(x).map(Some).ok_or(()))).collect()
}

fn read_array(name: &str, a: &dyn Array) -> Result<Values, SparkError> {
    let too_big = || SparkError::Protocol(format!("column '{name}' holds an integer beyond 64 bits"));
    Ok(match a.data_type() {
        DataType::Boolean => Values::Bool(a.as_boolean().iter().collect()),
        DataType::Int8 => Values::Int(ints::<Int8Type>(a, |x| Some(x as i64)).map_err(|_| too_big())?),
        DataType::Int16 => Values::Int(ints::<Int16Type>(a, |x| Some(x as i64)).map_err(|_| too_big())?),
        DataType::Int32 => Values::Int(ints::<Int32Type>(a, |x| Some(x as i64)).map_err(|_| too_big())?),
        DataType::Int64 => Values::Int(ints::<Int64Type>(a, Some).map_err(|_| too_big())?),
        DataType::UInt8 => Values::Int(ints::<UInt8Type>(a, |x| Some(x as i64)).map_err(|_| too_big())?),
        DataType::UInt16 => Values::Int(ints::<UInt16Type>(a, |x| Some(x as i64)).map_err(|_| too_big())?),
        DataType::UInt32 => Values::Int(ints::<UInt32Type>(a, |x| Some(x as i64)).map_err(|_| too_big())?),
        DataType::UInt64 => Values::Int(ints::<UInt64Type>(a, |x| i64::try_from(x).ok()).map_err(|_| too_big())?),
        DataType::Float32 => Values::Float(a.as_primitive::<Float32Type>().iter().map(|v| v.map(f64::from)).collect()),
        DataType::Float64 => Values::Float(a.as_primitive::<Float64Type>().iter().collect()),
        DataType::Decimal128(_, scale) => {
            let div = 10f64.powi(*scale as i32);
            Values::Float(a.as_primitive::<Decimal128Type>().iter().map(|v| v.map(|x| x as f64 / div)).collect())
        }
        DataType::Utf8 => Values::Text(a.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()),
        DataType::LargeUtf8 => Values::Text(a.as_string::<i64>().iter().map(|v| v.map(str::to_string)).collect()),
        DataType::Utf8View => Values::Text(a.as_string_view().iter().map(|v| v.map(str::to_string)).collect()),
        DataType::Null => Values::Text(vec![None; a.len()]),
        other => return Err(SparkError::UnsupportedType { column: name.to_string(), data_type: other.to_string() }),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{BooleanArray, Decimal128Array, Float64Array, Int32Array, ListArray, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    #[test]
    fn batches_become_plain_columns_and_a_polars_frame() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("race", DataType::Utf8, true),
            Field::new("n", DataType::Int32, false),
            Field::new("sum_w", DataType::Decimal128(20, 2), true),
            Field::new("loss", DataType::Float64, true),
            Field::new("pos", DataType::Boolean, true),
        ]));
        let batch = |race: Vec<Option<&str>>, n: Vec<i32>, w: Vec<Option<i128>>, l: Vec<Option<f64>>, p: Vec<Option<bool>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(race)),
                    Arc::new(Int32Array::from(n)),
                    Arc::new(Decimal128Array::from(w).with_precision_and_scale(20, 2).unwrap()),
                    Arc::new(Float64Array::from(l)),
                    Arc::new(BooleanArray::from(p)),
                ],
            )
            .unwrap()
        };
        let t = SparkTable::from_batches(&[
            batch(vec![Some("White"), None], vec![3, 4], vec![Some(150), None], vec![Some(0.5), None], vec![Some(true), None]),
            batch(vec![Some("Other")], vec![5], vec![Some(1)], vec![Some(1.0)], vec![Some(false)]),
        ])
        .unwrap();
        assert_eq!(t.height(), 3);
        assert_eq!(t.require("race").unwrap().values, Values::Text(vec![Some("White".into()), None, Some("Other".into())]));
        assert_eq!(t.require("n").unwrap().values, Values::Int(vec![Some(3), Some(4), Some(5)]));
        assert_eq!(t.require("sum_w").unwrap().values, Values::Float(vec![Some(1.5), None, Some(0.01)]));
        assert_eq!(t.require("n").unwrap().data_type, "Int32");
        assert_eq!(t.require("pos").unwrap().values.f64_at(0), Some(1.0));
        assert!(t.require("missing").is_err());
        let df = t.to_polars().unwrap();
        assert_eq!(df.shape(), (3, 5));
        assert_eq!(df.column("n").unwrap().i64().unwrap().get(2), Some(5));
        assert_eq!(SparkTable::from_batches(&[]).unwrap().height(), 0);
    }

    #[test]
    fn other_types_are_errors_naming_the_column() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
        let schema = Arc::new(Schema::new(vec![Field::new("xs", list.data_type().clone(), true)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(list)]).unwrap();
        let err = SparkTable::from_batches(&[batch]).unwrap_err();
        assert!(matches!(&err, SparkError::UnsupportedType { column, .. } if column == "xs"), "{err}");
    }
}
