//! Column roles: taken from the spec where given, inferred from column names where not.

use std::collections::HashSet;

use strata_app::model::{ColumnKind, IngestSpec, Role};

use super::error::IngestError;

/// Which column plays which part. Columns with no role are features.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Roles {
    pub label: String,
    pub scores: Vec<String>,
    pub prediction: Option<String>,
    pub id: Option<String>,
    pub timestamp: Option<String>,
    pub weight: Option<String>,
    pub categorical: HashSet<String>,
    pub ignore: HashSet<String>,
    /// Multiclass models given as one score column per class; each model's name is also in
    /// `scores` (it names the predicted-class column ingest derives).
    pub class_models: Vec<ClassModel>,
}

/// A multiclass model given as one probability column per class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassModel {
    pub model: String,
    /// (class, column), classes sorted.
    pub columns: Vec<(String, String)>,
}

/// Groups score columns named `<model>_<class>` or `<model>[<class>]` into per-class models: a
/// model is a stem with exactly one column for every class. Returns the models and the score
/// columns left over.
pub fn group_class_scores(scores: &[String], classes: &[String]) -> (Vec<ClassModel>, Vec<String>) {
    use std::collections::BTreeMap;
    if classes.len() < 2 {
        return (vec![], scores.to_vec());
    }
    // Every way a column's name splits into a stem and a class.
    let mut by_stem: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for col in scores {
        for class in classes {
            let stem = col
                .strip_suffix(class.as_str())
                .and_then(|s| s.strip_suffix('_'))
                .or_else(|| col.strip_suffix(']').and_then(|s| s.strip_suffix(class.as_str())).and_then(|s| s.strip_suffix('[')));
            if let Some(stem) = stem.filter(|s| !s.is_empty()) {
                by_stem.entry(stem).or_default().push((class.as_str(), col.as_str()));
            }
        }
    }
    let mut used: HashSet<&str> = HashSet::new();
    let mut models = Vec::new();
    for (stem, mut cols) in by_stem {
        cols.sort();
        cols.dedup_by(|a, b| a.0 == b.0);
        let complete = cols.len() == classes.len() && cols.iter().all(|(_, c)| !used.contains(c));
        if complete {
            used.extend(cols.iter().map(|(_, c)| *c));
            let mut columns: Vec<(String, String)> = cols.iter().map(|(k, c)| (k.to_string(), c.to_string())).collect();
            let order: Vec<&String> = classes.iter().collect();
            columns.sort_by_key(|(k, _)| order.iter().position(|c| *c == k));
            models.push(ClassModel { model: stem.to_string(), columns });
        }
    }
    let rest = scores.iter().filter(|c| !used.contains(c.as_str())).cloned().collect();
    (models, rest)
}

impl Roles {
    /// The per-class model and class a column scores, if it is a per-class score column.
    pub fn class_model_of(&self, column: &str) -> Option<(&str, &str)> {
        self.class_models.iter().find_map(|m| m.columns.iter().find(|(_, c)| c == column).map(|(k, _)| (m.model.as_str(), k.as_str())))
    }

    pub fn role_of(&self, column: &str) -> Option<Role> {
        if self.label == column {
            Some(Role::Label)
        } else if self.scores.iter().any(|s| s == column) || self.class_model_of(column).is_some() {
            Some(Role::Score)
        } else if self.prediction.as_deref() == Some(column) {
            Some(Role::Prediction)
        } else if self.id.as_deref() == Some(column) {
            Some(Role::Id)
        } else if self.timestamp.as_deref() == Some(column) {
            Some(Role::Timestamp)
        } else if self.weight.as_deref() == Some(column) {
            Some(Role::Weight)
        } else if self.ignore.contains(column) {
            None
        } else {
            Some(Role::Feature)
        }
    }
}

const LABEL_NAMES: [&str; 8] = ["label", "y", "target", "class", "outcome", "ground_truth", "truth", "y_true"];
const SCORE_PREFIXES: [&str; 7] = ["score", "prob", "prediction", "pred", "y_pred", "yhat", "y_hat"];
const ID_NAMES: [&str; 5] = ["id", "example_id", "row_id", "uid", "record_id"];
const TIME_NAMES: [&str; 6] = ["timestamp", "ts", "time", "datetime", "event_time", "date"];
const WEIGHT_NAMES: [&str; 3] = ["weight", "sample_weight", "weights"];

fn find(names: &[String], wanted: &[&str]) -> Option<String> {
    wanted.iter().find_map(|w| names.iter().find(|n| n.eq_ignore_ascii_case(w)).cloned())
}

/// Best-effort roles from names alone (used by the preview even when the file lacks a label).
pub fn guess(names: &[String], kinds: &[ColumnKind]) -> Roles {
    let label = find(names, &LABEL_NAMES).unwrap_or_default();
    let scores = names
        .iter()
        .zip(kinds)
        .filter(|(n, k)| {
            let l = n.to_ascii_lowercase();
            **n != label
                && matches!(k, ColumnKind::Numeric | ColumnKind::Categorical)
                && SCORE_PREFIXES.iter().any(|p| l == *p || l.starts_with(&format!("{p}_")) || l.starts_with(&format!("{p}-")))
        })
        .map(|(n, _)| n.clone())
        .collect();
    Roles {
        label,
        scores,
        id: find(names, &ID_NAMES),
        timestamp: find(names, &TIME_NAMES),
        weight: find(names, &WEIGHT_NAMES),
        ..Default::default()
    }
}

/// Roles from the spec, falling back to names; every column the spec names must exist, and no
/// column may have two roles.
pub fn resolve(names: &[String], kinds: &[ColumnKind], spec: &IngestSpec, file: &str) -> Result<Roles, IngestError> {
    let known: HashSet<&str> = names.iter().map(String::as_str).collect();
    let listing = || names.join(", ");
    let must_exist = |what: &str, col: &str| -> Result<String, IngestError> {
        if known.contains(col) {
            Ok(col.to_string())
        } else {
            Err(IngestError::Spec(format!("{file}: the {what} column '{col}' is not in the file (its columns: {})", listing())))
        }
    };
    let guessed = guess(names, kinds);
    let label = match &spec.label {
        Some(l) => must_exist("label", l)?,
        None if !guessed.label.is_empty() => guessed.label.clone(),
        None => {
            return Err(IngestError::Spec(format!(
                "{file}: no label column: none is named label, y, target or class; name it with \"label\" (columns: {})",
                listing()
            )));
        }
    };
    let opt = |what: &str, given: &Option<String>, guessed: Option<String>| -> Result<Option<String>, IngestError> {
        match given {
            Some(c) if c.is_empty() => Ok(None),
            Some(c) => must_exist(what, c).map(Some),
            None => Ok(guessed),
        }
    };
    let id = opt("id", &spec.id, guessed.id.clone())?;
    let timestamp = opt("timestamp", &spec.timestamp, guessed.timestamp.clone())?;
    let weight = opt("weight", &spec.weight, guessed.weight.clone())?;
    let prediction = opt("prediction", &spec.prediction, None)?;
    let scores = match &spec.scores {
        Some(s) if !s.is_empty() => s.iter().map(|c| must_exist("score", c)).collect::<Result<Vec<_>, _>>()?,
        _ => guessed.scores.iter().filter(|s| Some(*s) != prediction.as_ref()).cloned().collect(),
    };
    if scores.is_empty() {
        return Err(IngestError::Spec(format!(
            "{file}: no score column: none is named score*, prob* or prediction*; name the model columns with \"scores\" (columns: {})",
            listing()
        )));
    }
    let mut ignore = HashSet::new();
    for c in &spec.ignore {
        ignore.insert(must_exist("ignored", c)?);
    }
    let mut categorical = HashSet::new();
    for c in &spec.categorical {
        categorical.insert(must_exist("categorical", c)?);
    }
    // One role per column.
    let mut taken: Vec<(&str, &str)> = vec![("label", label.as_str())];
    taken.extend(scores.iter().map(|s| ("score", s.as_str())));
    for (what, c) in [("id", &id), ("timestamp", &timestamp), ("weight", &weight), ("prediction", &prediction)] {
        if let Some(c) = c {
            taken.push((what, c.as_str()));
        }
    }
    let mut seen: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (what, c) in &taken {
        if let Some(before) = seen.insert(c, what) {
            return Err(IngestError::Spec(format!("{file}: column '{c}' cannot be both the {before} and a {what} column")));
        }
        if ignore.contains(*c) {
            return Err(IngestError::Spec(format!("{file}: column '{c}' is the {what} column and cannot be ignored")));
        }
    }
    Ok(Roles { label, scores, prediction, id, timestamp, weight, categorical, ignore, class_models: vec![] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn groups_per_class_score_columns_into_models() {
        let classes = names(&["a_b", "b", "c"]);
        let scores = names(&["p_a_b", "p_b", "p_c", "q[a_b]", "q[b]", "q[c]", "pred", "r_b", "r_c"]);
        let (models, rest) = group_class_scores(&scores, &classes);
        assert_eq!(models.len(), 2);
        assert_eq!(models[0].model, "p");
        assert_eq!(models[0].columns, vec![("a_b".into(), "p_a_b".into()), ("b".into(), "p_b".into()), ("c".into(), "p_c".into())]);
        assert_eq!(models[1].model, "q");
        assert_eq!(models[1].columns[2], ("c".into(), "q[c]".into()));
        // `r` lacks a column for class a_b: not a model; `pred` is a predicted-class column.
        assert_eq!(rest, names(&["pred", "r_b", "r_c"]));
        assert!(group_class_scores(&scores, &names(&["b"])).0.is_empty(), "one class is no multiclass model");
    }

    #[test]
    fn infers_roles_from_names() {
        let n = names(&["example_id", "timestamp", "age", "label", "score_logreg", "score_gbt"]);
        let k = vec![ColumnKind::Categorical, ColumnKind::Categorical, ColumnKind::Numeric, ColumnKind::Numeric, ColumnKind::Numeric, ColumnKind::Numeric];
        let r = resolve(&n, &k, &IngestSpec::default(), "f.csv").unwrap();
        assert_eq!(r.label, "label");
        assert_eq!(r.scores, vec!["score_logreg", "score_gbt"]);
        assert_eq!(r.id.as_deref(), Some("example_id"));
        assert_eq!(r.timestamp.as_deref(), Some("timestamp"));
        assert_eq!(r.role_of("age"), Some(Role::Feature));
    }

    #[test]
    fn spec_overrides_and_must_name_real_columns() {
        let n = names(&["y", "p", "age"]);
        let k = vec![ColumnKind::Numeric; 3];
        let spec = IngestSpec { scores: Some(vec!["p".into()]), ..Default::default() };
        assert_eq!(resolve(&n, &k, &spec, "f").unwrap().scores, vec!["p"]);
        let bad = IngestSpec { label: Some("nope".into()), ..Default::default() };
        let e = resolve(&n, &k, &bad, "f").unwrap_err().to_string();
        assert!(e.contains("'nope'") && e.contains("y, p, age"), "{e}");
        let twice = IngestSpec { label: Some("p".into()), scores: Some(vec!["p".into()]), ..Default::default() };
        assert!(resolve(&n, &k, &twice, "f").unwrap_err().to_string().contains("cannot be both"));
    }
}
