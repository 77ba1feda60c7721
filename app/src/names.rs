//! Suggestions for a mistyped name ("did you mean …?"): the known names close to it. Shared by the
//! engine's errors and the pickers' checks in the browser.

/// Up to three known names close to `name`: within an edit distance of a third of its length (at least 2), case
/// ignored, or containing it; closest first.
pub fn closest<'k>(name: &str, known: impl Iterator<Item = &'k str>) -> Vec<&'k str> {
    let lname = name.to_lowercase();
    let len = lname.chars().count();
    // Edit distance costs length², so very long names (backticked) get no suggestions.
    if len > 64 {
        return vec![];
    }
    let limit = (len / 3).max(2);
    let mut scored: Vec<(usize, &str)> = known
        .filter(|k| k.len() <= 256)
        .filter_map(|k| {
            let lk = k.to_lowercase();
            let d = edit_distance(&lname, &lk);
            (d <= limit || (len >= 3 && lk.contains(&lname))).then_some((d, k))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, k)| k).collect()
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_use_edit_distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        let known = ["age", "wage", "page_views", "sex"];
        assert_eq!(closest("agee", known.into_iter()), vec!["age", "wage"]);
        assert_eq!(closest("AGE", known.into_iter()), vec!["age", "wage", "page_views"]);
        assert!(closest("zzzzzzzz", known.into_iter()).is_empty());
    }
}
