//! The run's feature columns as the slicing pickers show them (name, type, cardinality, values).

use strata_app::model::{ColumnBrief, ColumnKind, MAX_BRIEF_VALUES, Role, RunDetail};

use super::{AppState, ServiceError};
use crate::eval::slicing::{Cut, feature_codes};

impl AppState {
    /// The feature columns of a run, in the run's order; the values of each non-numeric column
    /// with at most [`MAX_BRIEF_VALUES`] of them, labelled as the engine labels slices.
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
            .map(|c| {
                let listed = c.kind != ColumnKind::Numeric && c.distinct + u64::from(c.missing > 0) <= MAX_BRIEF_VALUES as u64;
                (c.name.clone(), c.kind, c.distinct, listed, c.min, c.max)
            })
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
                        let values = match (&frame, listed) {
                            (Some(df), true) => feature_codes(df, &name, &name, &Cut::Values).map(|(_, labels)| labels).unwrap_or_default(),
                            (None, true) => sampled.get(&name).cloned().unwrap_or_default(),
                            _ => Vec::new(),
                        };
                        ColumnBrief { name, kind, cardinality, min, max, values }
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
