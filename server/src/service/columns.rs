//! The run's feature columns as the slicing pickers show them (name, type, cardinality, values).

use strata_app::model::{ColumnBrief, ColumnKind, MAX_BRIEF_VALUES, Role, RunDetail};

use super::{AppState, ServiceError};
use crate::eval::slicing::{Cut, feature_codes};

impl AppState {
    /// The feature columns of a run, in the run's order; the values of each non-numeric column
    /// with at most [`MAX_BRIEF_VALUES`] of them, labelled as the engine labels slices, and the
    /// [`MAX_BRIEF_VALUES`] most frequent values of the other non-numeric columns.
    pub async fn column_briefs(&self, detail: &RunDetail) -> Result<Vec<ColumnBrief>, ServiceError> {
        let id = &detail.summary.id;
        let key = format!("{id}\u{0}column_briefs");
        if let Some(done) = self.recall::<Vec<ColumnBrief>>(&key) {
            return Ok(done);
        }
        let wanted: Vec<(String, ColumnKind, u64, bool, Option<f64>, Option<f64>)> = detail
            .columns
            .iter()
            .filter(|c| c.role == Role::Feature && c.kind != ColumnKind::Timestamp)
            .map(|c| (c.name.clone(), c.kind, c.distinct, c.kind != ColumnKind::Numeric, c.min, c.max))
            .collect();
        // An external run's rows are not at hand: its values are those its registration sample
        // summarised (the most frequent ones).
        let external = detail.summary.source.is_some();
        let sampled: std::collections::HashMap<String, Vec<String>> = detail
            .columns
            .iter()
            .filter(|_| external)
            .map(|c| {
                let mut v: Vec<String> = c.top_values.iter().map(|t| t.value.clone()).collect();
                v.sort();
                (c.name.clone(), v)
            })
            .collect();
        let frame = if !external && wanted.iter().any(|w| w.3) { Some(self.frame(id).await?) } else { None };
        let briefs = self
            .work
            .run(move || {
                wanted
                    .into_iter()
                    .map(|(name, kind, cardinality, listed, min, max)| {
                        let (values, top_values) = match (&frame, listed) {
                            (Some(df), true) => feature_codes(df, &name, &name, &Cut::Values).map(|(codes, labels)| brief_values(&codes, labels)).unwrap_or_default(),
                            (None, true) => (sampled.get(&name).cloned().unwrap_or_default(), Vec::new()),
                            _ => (Vec::new(), Vec::new()),
                        };
                        ColumnBrief { name, kind, cardinality, min, max, values, top_values }
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
        self.remember(&key, briefs.clone());
        Ok(briefs)
    }

    /// The slice specs a project's newest gates judge (without `overall`, each once): the slices
    /// page's default slicing for the project's runs.
    pub async fn gate_slices(&self, project: Option<&str>) -> Result<Vec<String>, ServiceError> {
        let Some(project) = project else { return Ok(Vec::new()) };
        let Some(gates) = self.store.get_gates(project, None).await? else { return Ok(Vec::new()) };
        let mut specs: Vec<String> = Vec::new();
        for g in gates.gates.gates {
            let s = g.slice.trim().to_string();
            if !s.is_empty() && s != "overall" && !specs.contains(&s) {
                specs.push(s);
            }
        }
        Ok(specs)
    }
}

/// A column's values for the pickers from its codes and labels: every label when there are at
/// most [`MAX_BRIEF_VALUES`] (as sorted by the engine), else none and the most frequent
/// [`MAX_BRIEF_VALUES`] (ties by label), never the whole column.
fn brief_values(codes: &[u32], labels: Vec<String>) -> (Vec<String>, Vec<String>) {
    if labels.len() <= MAX_BRIEF_VALUES {
        return (labels, Vec::new());
    }
    let mut counts = vec![0u64; labels.len()];
    for c in codes {
        if let Some(n) = counts.get_mut(*c as usize) {
            *n += 1;
        }
    }
    let mut order: Vec<usize> = (0..labels.len()).filter(|i| counts[*i] > 0).collect();
    order.sort_by(|a, b| counts[*b].cmp(&counts[*a]).then_with(|| labels[*a].cmp(&labels[*b])));
    order.truncate(MAX_BRIEF_VALUES);
    (Vec::new(), order.into_iter().map(|i| labels[i].clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_values_give_the_most_frequent_only() {
        let labels: Vec<String> = (0..60).map(|i| format!("v{i:02}")).collect();
        // v59 three times, v07 twice, every other once.
        let mut codes: Vec<u32> = (0..60).collect();
        codes.extend([59, 59, 7]);
        let (all, top) = brief_values(&codes, labels.clone());
        assert!(all.is_empty());
        assert_eq!(top.len(), MAX_BRIEF_VALUES);
        assert_eq!(&top[..3], &["v59".to_string(), "v07".to_string(), "v00".to_string()]);
        let few: Vec<String> = labels[..3].to_vec();
        assert_eq!(brief_values(&[0, 1, 2, 2], few.clone()), (few, Vec::new()));
    }
}
