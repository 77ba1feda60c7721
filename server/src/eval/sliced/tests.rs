//! The engine's unit tests: invariants (proptest), blockings, bootstraps, edge cases.

use super::*;

fn rows(n: usize, seed: u64) -> Vec<(f64, f64, f64)> {
    let mut r = SplitMix(seed);
    (0..n)
        .map(|_| {
            let p = (r.next() >> 11) as f64 / (1u64 << 53) as f64;
            let y = if (r.next() >> 11) as f64 / ((1u64 << 53) as f64) < p { 1.0 } else { 0.0 };
            (y, (p * 20.0).round() / 20.0, 1.0 + (r.next() % 3) as f64)
        })
        .collect()
}

fn stats_of(rs: &[(f64, f64, f64)], thresholds: &[f64]) -> BinaryStats {
    let mut s = BinaryStats::new(thresholds.len());
    for (y, p, w) in rs {
        s.add(thresholds.partition_point(|t| t <= p), *y, *p, *w);
    }
    s
}

#[test]
fn merging_chunk_accumulators_equals_one_pass() {
    let t = [0.2, 0.5, 0.8];
    for seed in 0..20 {
        let rs = rows(500, seed);
        let cut = (seed as usize * 37) % 500;
        let mut a = stats_of(&rs[..cut], &t);
        a.merge(&stats_of(&rs[cut..], &t));
        let whole = stats_of(&rs, &t);
        assert_eq!(a.count, whole.count);
        assert_eq!(a.pos, whole.pos);
        assert_eq!(a.neg, whole.neg);
        assert!((a.sum_log_loss - whole.sum_log_loss).abs() < 1e-9);
    }
}

#[test]
fn rates_are_proportions_and_complements_add_up() {
    let t = [0.1, 0.35, 0.5, 0.9];
    for seed in 0..20 {
        let s = stats_of(&rows(300, seed), &t);
        for j in 0..t.len() {
            let (tp, fp, tn, fn_) = s.confusion(j);
            let m = confusion_metrics(tp, fp, tn, fn_);
            for (name, v) in &m {
                if let Some(v) = v {
                    if *name != "mcc" {
                        assert!((0.0..=1.0).contains(v), "{name} = {v}");
                    }
                }
            }
            assert!((m["tpr"].unwrap() + m["fnr"].unwrap() - 1.0).abs() < 1e-12);
            assert!((m["fpr"].unwrap() + m["tnr"].unwrap() - 1.0).abs() < 1e-12);
        }
    }
}

proptest::proptest! {
    /// Accumulators of any two chunks merge into the accumulator of the whole, and every rate
    /// at every threshold is a proportion with TPR + FNR = 1.
    #[test]
    fn merge_equals_one_pass_and_rates_are_proportions(
        rows in proptest::collection::vec((0u8..2, 0u32..=100, 1u32..4), 1..300),
        cut_at in 0usize..300,
    ) {
        let rs: Vec<(f64, f64, f64)> = rows.iter().map(|(y, p, w)| (*y as f64, *p as f64 / 100.0, *w as f64)).collect();
        let t = [0.0, 0.25, 0.5, 0.75, 1.0];
        let cut = cut_at.min(rs.len());
        let mut merged = stats_of(&rs[..cut], &t);
        merged.merge(&stats_of(&rs[cut..], &t));
        let whole = stats_of(&rs, &t);
        proptest::prop_assert_eq!(&merged.pos, &whole.pos);
        proptest::prop_assert_eq!(&merged.neg, &whole.neg);
        proptest::prop_assert_eq!(merged.count, whole.count);
        proptest::prop_assert!((merged.sum_log_loss - whole.sum_log_loss).abs() < 1e-6);
        for j in 0..t.len() {
            let (tp, fp, tn, fn_) = whole.confusion(j);
            let m = confusion_metrics(tp, fp, tn, fn_);
            for (name, v) in &m {
                if let (Some(v), false) = (v, *name == "mcc") {
                    proptest::prop_assert!((0.0..=1.0).contains(v), "{} = {}", name, v);
                }
            }
            if let (Some(a), Some(b)) = (m["tpr"], m["fnr"]) {
                proptest::prop_assert!((a + b - 1.0).abs() < 1e-12);
            }
        }
    }
}

fn frame(rs: &[(f64, f64, f64)], group: impl Fn(usize) -> &'static str) -> DataFrame {
    df!(
        "label" => rs.iter().map(|r| r.0).collect::<Vec<f64>>(),
        "score" => rs.iter().map(|r| r.1).collect::<Vec<f64>>(),
        "w" => rs.iter().map(|r| r.2).collect::<Vec<f64>>(),
        "g" => (0..rs.len()).map(group).collect::<Vec<&str>>(),
    )
    .unwrap()
}

fn request(bootstrap: usize) -> MetricsRequest {
    MetricsRequest {
        label: "label".into(),
        model: "score".into(),
        class_scores: vec![],
        weight: Some("w".into()),
        specs: vec!["g".into()],
        thresholds: vec![0.25, 0.5, 0.75],
        ci: 0.9,
        bootstrap,
        seed: 7,
        baseline: "overall".into(),
        min_size: 1,
        max_slices: 100,
        alpha: 0.05,
    }
}

#[test]
fn the_binned_bootstrap_keeps_points_exact_and_intervals_close_to_the_exact_bootstrap() {
    // 40,000 unweighted rows with distinct scores in two groups: 40,000 exact cells, binned
    // to about 2,000 for the replicates.
    let mut r = SplitMix(11);
    let rs: Vec<(f64, f64, f64)> = (0..40_000)
        .map(|_| {
            let p = (r.next() >> 11) as f64 / (1u64 << 53) as f64;
            let y = if (r.next() >> 11) as f64 / ((1u64 << 53) as f64) < 0.15 + 0.7 * p { 1.0 } else { 0.0 };
            (y, p, 1.0)
        })
        .collect();
    let df = frame(&rs, |i| if i % 3 == 0 { "a" } else { "b" });
    let mut req = request(1000);
    req.weight = None;
    let prep = prepare(&df, &req, Task::Binary).unwrap();
    assert_eq!(prep.cells(), 40_000);
    let exact = compute_with_budget(&prep, &req, usize::MAX, &crate::progress::Progress::new()).unwrap();
    let binned = compute_with_budget(&prep, &req, 2_000, &crate::progress::Progress::new()).unwrap();
    let bp = prep.binned(&prep.cell_tuples().unwrap(), 2_000);
    assert!(bp.cells() < 8_000 && bp.cells() > 1_000, "{} binned cells", bp.cells());
    let mut compared = 0;
    for (e, b) in exact.slices.iter().zip(&binned.slices) {
        let pairs = e.metrics.iter().map(|(n, x)| (n.clone(), x, &b.metrics[n])).chain(
            e.at.iter().zip(&b.at).flat_map(|(ea, ba)| ea.metrics.iter().map(move |(n, x)| (format!("{n}@{}", ea.threshold), x, &ba.metrics[n]))),
        );
        for (name, x, y) in pairs {
            assert_eq!(x.value.map(|v| (v * 1e9).round()), y.value.map(|v| (v * 1e9).round()), "{name}: the point value does not change");
            if x.method != "bootstrap" {
                assert_eq!(x.method, y.method);
                continue;
            }
            assert_eq!(y.method, "bootstrap_binned");
            let (Some(lo), Some(hi), Some(blo), Some(bhi)) = (x.lo, x.hi, y.lo, y.hi) else { continue };
            let width = hi - lo;
            // Different draws (other cells) → Monte-Carlo noise of 1,000 replicates' 5% and
            // 95% quantiles; anything systematic would show as much more.
            assert!((blo - lo).abs() <= 0.15 * width && (bhi - hi).abs() <= 0.15 * width, "{} {name}: exact [{lo}, {hi}], binned [{blo}, {bhi}]", e.label());
            compared += 1;
        }
    }
    assert!(compared >= 30, "{compared} bootstrap intervals compared");
    // The baseline comparison's p-values come from the same (shifted) replicates.
    let pe = exact.slices[1].vs_baseline["auc_roc"].p_value.unwrap();
    let pb = binned.slices[1].vs_baseline["auc_roc"].p_value.unwrap();
    assert!((pe - pb).abs() < 0.2, "{pe} vs {pb}");
}

/// Every replicate of a binary request as one full pass over its resampled cells computes it.
fn full_pass_replicates(prep: &Prepared, req: &MetricsRequest) -> Vec<Vec<f64>> {
    let layout = BinaryLayout::get();
    let k = threshold_counts(&prep.p, &req.thresholds);
    let t = req.thresholds.len();
    (0..req.bootstrap)
        .map(|b| {
            let mut rng = replicate_rng(req.seed, b);
            let w: Vec<f64> = prep.w.iter().zip(&prep.mult).map(|(w, m)| w * rng.poisson(*m as f64)).collect();
            binary_passes(prep, &k, &w, t).iter().flatten().flat_map(|sp| flat_binary(sp, t, &layout)).map(|v| v.unwrap_or(f64::NAN)).collect()
        })
        .collect()
}

#[test]
fn kept_threshold_free_replicates_equal_a_full_pass_per_replicate() {
    // Weighted rows, three groups (a covering spec: the overall slice is merged) and a filter
    // baseline; with the draws kept (50 replicates) and drawn again (1,500 × 3,000 cells is
    // more than `KEPT_DRAWS`).
    let rs: Vec<(f64, f64, f64)> = rows(3000, 29).into_iter().enumerate().map(|(i, (y, p, w))| (y, (p + i as f64 * 1e-6).min(1.0), w)).collect();
    let df = frame(&rs, |i| ["a", "b", "c"][i % 3]);
    for (bootstrap, baseline) in [(50, "overall"), (1500, "g=a")] {
        let mut req = request(bootstrap);
        req.baseline = baseline.into();
        let prep = prepare(&df, &req, Task::Binary).unwrap();
        assert!(prep.cells() > 2_900, "{} cells", prep.cells());
        let want = full_pass_replicates(&prep, &req);
        let progress = crate::progress::Progress::new();
        // The point values too, split the same way (twice: the second from what the first kept).
        let k = threshold_counts(&prep.p, &req.thresholds);
        let w: Vec<f64> = prep.w.iter().zip(&prep.mult).map(|(w, m)| w * *m as f64).collect();
        let layout = BinaryLayout::get();
        let full: Vec<Vec<Option<u64>>> = binary_passes(&prep, &k, &w, 3).iter().flatten().map(|sp| flat_binary(sp, 3, &layout).iter().map(|v| v.map(f64::to_bits)).collect()).collect();
        for _ in 0..2 {
            let split: Vec<Vec<Option<u64>>> = binary_point(&prep, &k, 3).into_iter().flatten().map(|v| v.iter().map(|v| v.map(f64::to_bits)).collect()).collect();
            assert_eq!(split, full, "point values");
        }
        // Twice: computed, then from what the first kept (at other thresholds in between).
        for round in 0..2 {
            let k = threshold_counts(&prep.p, &req.thresholds);
            let (got, binned) = binary_replicates(&prep, &req, &req.thresholds, &k, BOOTSTRAP_CELL_BUDGET, &progress);
            assert!(!binned);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), w.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "round {round}, {bootstrap} replicates");
            }
            let other = [0.1, 0.6];
            let _ = binary_replicates(&prep, &req, &other, &threshold_counts(&prep.p, &other), BOOTSTRAP_CELL_BUDGET, &progress);
        }
        let kept = prep.boot.scalars.lock().unwrap().as_ref().map(|s| s.draws.is_some());
        assert_eq!(kept, Some(bootstrap == 50), "draws kept only when they fit");
    }
}

#[test]
fn a_thresholds_interval_does_not_depend_on_the_other_thresholds_asked() {
    let rs = rows(2000, 31);
    let df = frame(&rs, |i| ["a", "b"][i % 2]);
    let mut alone = request(200);
    alone.thresholds = vec![0.5];
    let prep = prepare(&df, &alone, Task::Binary).unwrap();
    let with_others = MetricsRequest { thresholds: vec![0.25, 0.5, 0.75], ..alone.clone() };
    let (a, b) = (compute_prepared(&prep, &alone).unwrap(), compute_prepared(&prep, &with_others).unwrap());
    let mut compared = 0;
    for (x, y) in a.slices.iter().zip(&b.slices) {
        assert_eq!(x.metrics, y.metrics, "threshold-free metrics");
        let (xa, ya) = (&x.at[0], y.at.iter().find(|t| t.threshold == 0.5).unwrap());
        for (name, e) in &xa.metrics {
            assert_eq!(e, &ya.metrics[name], "{name}@0.5");
            compared += 1;
        }
    }
    assert!(compared > 20);
}

#[test]
fn the_overall_slice_merged_from_a_covering_spec_equals_its_own_pass() {
    let rs = rows(3000, 17);
    let df = frame(&rs, |i| ["a", "b", "c"][i % 3]);
    let req = request(0);
    let prep = prepare(&df, &req, Task::Binary).unwrap();
    let k: Vec<u16> = prep.p.iter().map(|x| req.thresholds.partition_point(|t| t <= x) as u16).collect();
    let w: Vec<f64> = prep.w.iter().zip(&prep.mult).map(|(w, m)| w * *m as f64).collect();
    let merged = &binary_passes(&prep, &k, &w, req.thresholds.len())[0][0];
    let direct = &binary_pass(&prep, 0, &k, &w, req.thresholds.len())[0];
    let layout = BinaryLayout::get();
    let (a, b) = (flat_binary(merged, req.thresholds.len(), &layout), flat_binary(direct, req.thresholds.len(), &layout));
    for (x, y) in a.iter().zip(&b) {
        match (x, y) {
            (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{x} vs {y}"),
            _ => assert_eq!(x, y),
        }
    }
    assert_eq!(merged.stats.count, direct.stats.count);
}

#[test]
fn threshold_counts_equal_a_search_per_score() {
    let mut r = SplitMix(23);
    let mut xs: Vec<f64> = (0..2000).map(|_| r.uniform() * 1.2 - 0.1).collect();
    xs.extend([0.0, -0.0, 0.5, 0.5, 1.0, f64::NAN]);
    xs.sort_by(|a, b| b.total_cmp(a));
    let ts = parse_thresholds("0:1:0.05").unwrap();
    let want: Vec<u16> = xs.iter().map(|x| ts.partition_point(|t| t <= x) as u16).collect();
    assert_eq!(threshold_counts(&xs, &ts), want);
}

#[test]
fn the_radix_sort_orders_scores_as_total_cmp_descending() {
    let mut r = SplitMix(5);
    let mut xs: Vec<f64> = (0..5000).map(|_| ((r.next() >> 11) as f64 / (1u64 << 53) as f64 - 0.3) * 10f64.powi((r.next() % 7) as i32 - 3)).collect();
    xs.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1.0, 1.0, 0.5, 0.5, f64::MIN_POSITIVE]);
    let (keys, order) = radix_sort(xs.iter().map(|x| descending_key(*x)).collect());
    assert!(keys.windows(2).all(|w| w[0] <= w[1]));
    let sorted: Vec<u64> = order.iter().map(|i| xs[*i as usize].to_bits()).collect();
    let mut want = xs.clone();
    want.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(sorted, want.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
}

#[test]
fn permuting_rows_changes_nothing_not_even_the_bootstrap() {
    let rs = rows(400, 3);
    let mut order: Vec<usize> = (0..rs.len()).collect();
    let mut r = SplitMix(9);
    for i in (1..order.len()).rev() {
        order.swap(i, (r.next() % (i as u64 + 1)) as usize);
    }
    let group = |i: usize| if i % 3 == 0 { "a" } else { "b" };
    let df1 = frame(&rs, group);
    let shuffled: Vec<(f64, f64, f64)> = order.iter().map(|i| rs[*i]).collect();
    let df2 = frame(&shuffled, |j| group(order[j]));
    let r1 = compute(&df1, &request(40), Task::Binary).unwrap();
    let r2 = compute(&df2, &request(40), Task::Binary).unwrap();
    // Cells are ordered by their values, not by row position, so even the resamples agree.
    assert_eq!(serde_json::to_string(&r1).unwrap(), serde_json::to_string(&r2).unwrap());
}

#[test]
fn repeated_rows_become_one_cell_and_metrics_do_not_change() {
    let rs = rows(300, 5);
    let repeated: Vec<(f64, f64, f64)> = rs.iter().cycle().take(rs.len() * 4).copied().collect();
    let df = frame(&repeated, |i| if i % 2 == 0 { "a" } else { "b" });
    let prep = prepare(&df, &request(0), Task::Binary).unwrap();
    assert_eq!(prep.rows(), 1200);
    assert!(prep.cells() <= 600, "{} cells", prep.cells());
    let got = compute_prepared(&prep, &request(0)).unwrap();
    let overall = &got.slices[0];
    assert_eq!(overall.count, 1200);
    // Four copies of a row weigh what the row weighs at four times its weight.
    let heavier: Vec<(f64, f64, f64)> = rs.iter().map(|(y, p, w)| (*y, *p, 4.0 * w)).collect();
    let reference = compute(&frame(&heavier, |i| if i % 2 == 0 { "a" } else { "b" }), &request(0), Task::Binary).unwrap();
    let reference = &reference.slices[0];
    assert!((overall.metrics["auc_roc"].value.unwrap() - reference.metrics["auc_roc"].value.unwrap()).abs() < 1e-12);
    assert!((overall.metrics["log_loss"].value.unwrap() - reference.metrics["log_loss"].value.unwrap()).abs() < 1e-12);
    assert!((overall.at[1].metrics["accuracy"].value.unwrap() - reference.at[1].metrics["accuracy"].value.unwrap()).abs() < 1e-12);
}


/// Chunked, parallel cell building gives exactly the cells of one pass over all rows, for
/// short runs of equal scores (sorted) and long ones (counted in a hash map) alike.
#[test]
fn cells_do_not_depend_on_chunks() {
    let mut r = SplitMix(5);
    let n = 5_000;
    // Scores from a small set (long runs) and distinct ones (short runs); two slicings, one
    // a filter that leaves rows out.
    let p: Vec<f64> = (0..n).map(|i| if i % 3 == 0 { (r.next() % 7) as f64 / 7.0 } else { r.uniform() }).collect();
    let y: Vec<f64> = (0..n).map(|_| (r.next() % 2) as f64).collect();
    let w: Vec<f64> = (0..n).map(|_| if r.next() % 4 == 0 { 2.0 } else { 1.0 }).collect();
    let a: Vec<Option<u32>> = (0..n).map(|_| Some((r.next() % 3) as u32)).collect();
    let b: Vec<Option<u32>> = (0..n).map(|_| (r.next() % 2 == 0).then_some(0)).collect();
    let tuple: Vec<u64> = a.iter().zip(&b).map(|(a, b)| a.map_or(0, |s| s as u64 + 1) * 2 + b.map_or(0, |s| s as u64 + 1)).collect();
    let rows = RowData { y: &y, p: &p, w: &w, tuple: &tuple, class_terms: &[] };
    let one = build_cells(&rows, n);
    assert!(one.len() < n && one.mult.iter().map(|m| *m as usize).sum::<usize>() == n);
    // `prepare`'s path for small runs: the rows compressed in place, as one block.
    let direct = chunk_cells(&rows, 0..n);
    assert_eq!((&direct.p, &direct.mult, &direct.tuple), (&one.p, &one.mult, &one.tuple));
    for chunk in [1, 7, 100, 1024] {
        let c = build_cells(&rows, chunk);
        assert_eq!((&c.y, &c.p, &c.w, &c.mult, &c.tuple), (&one.y, &one.p, &one.w, &one.mult, &one.tuple), "chunk {chunk}");
    }
    // No weight column (`w` empty) is every row weighing 1, on both paths.
    let ones = vec![1.0; n];
    let weighed = build_cells(&RowData { w: &ones, ..rows }, 100);
    for unweighted in [build_cells(&RowData { w: &[], ..rows }, 100), chunk_cells(&RowData { w: &[], ..rows }, 0..n)] {
        assert_eq!((&unweighted.y, &unweighted.p, &unweighted.w, &unweighted.mult, &unweighted.tuple), (&weighed.y, &weighed.p, &weighed.w, &weighed.mult, &weighed.tuple));
    }
    // Row blocks that compute each row's tuple from the slice ids (`tuple_parts`, `prepare`'s
    // path for large runs) hold the tuples of `slice_tuples`' array, block by block.
    let keys = |k: usize| (0..k).map(|s| vec![("c".to_string(), s.to_string())]).collect::<Vec<SliceKey>>();
    let assignments = vec![
        Assignment { keys: vec![vec![]], slice_of_row: SliceIds::default() },
        Assignment { keys: keys(3), slice_of_row: a.iter().copied().collect() },
        Assignment { keys: keys(1), slice_of_row: b.iter().copied().collect() },
    ];
    let radices = |d: &[TupleDigit]| d.iter().map(|d| match d { TupleDigit::One => 0, TupleDigit::Digit { radix, dense_before } => { assert!(dense_before.is_none()); *radix } }).collect::<Vec<_>>();
    let (parts, lazy_digits) = tuple_parts(&assignments).unwrap();
    let (array, array_digits) = slice_tuples(&mut assignments.clone(), n);
    assert_eq!(array, tuple);
    assert_eq!((radices(&lazy_digits), radices(&array_digits)), (vec![0, 4, 2], vec![0, 4, 2]));
    assert!((0..n).all(|i| tuple_of(&parts, i) == tuple[i]));
    for chunk in [100, 1024] {
        let lazy = partition_rows(&RowData { tuple: &[], ..rows }, chunk, Some(&parts));
        let eager = partition_rows(&rows, chunk, None);
        assert_eq!(lazy.len(), eager.len());
        for (l, e) in lazy.iter().zip(&eager) {
            assert_eq!((&l.tuple, &l.p, &l.y), (&e.tuple, &e.p, &e.y), "chunk {chunk}");
        }
    }
    // Radices whose product overflows 64 bits (251^9) need the renumbering of `slice_tuples`.
    let specs = |k: usize| (0..k).map(|_| Assignment { keys: keys(250), slice_of_row: SliceIds(vec![0, 1]) }).collect::<Vec<_>>();
    assert!(tuple_parts(&specs(8)).is_some() && tuple_parts(&specs(9)).is_none());
    // The cells' slices, decoded from their tuples, are the slices of their rows.
    let digits = [TupleDigit::Digit { radix: 4, dense_before: None }, TupleDigit::Digit { radix: 2, dense_before: None }];
    let decoded = decode_slices(&one.tuple, &digits);
    for (i, t) in one.tuple.iter().enumerate() {
        let row = tuple.iter().position(|x| x == t).unwrap();
        assert_eq!((decoded[0].get(i), decoded[1].get(i)), (a[row], b[row]), "cell {i}");
    }
    // Canonical order: scores descending, then slices, label, weight ascending, no two equal.
    for i in 1..one.len() {
        assert!(one.key(i - 1) < one.key(i), "cells {} and {i}", i - 1);
    }
    // Multiclass rows also tell cells apart by their class terms.
    let terms: Vec<ClassTerms> = (0..n).map(|_| ClassTerms { log_loss: (r.next() % 3) as f64 / 4.0, rank: (r.next() % 2) as u16 }).collect();
    let rows = RowData { class_terms: &terms, ..rows };
    let one = build_cells(&rows, n);
    assert_eq!(one.class_terms.len(), one.len());
    for chunk in [3, 333] {
        let c = build_cells(&rows, chunk);
        assert_eq!((&c.mult, &c.tuple, &c.p), (&one.mult, &one.tuple, &one.p), "chunk {chunk}");
        assert!(c.class_terms.iter().zip(&one.class_terms).all(|(a, b)| a.same(b)));
    }
}

/// Cells decode their slices from the row tuple, also when the tuple had to be renumbered densely
/// (nine specs of 251 slices overflow 64 bits): every spec's per-slice row counts and
/// weights are those of its own assignment, row by row.
#[test]
fn slices_decoded_from_cells_are_the_rows_slices() {
    let mut r = SplitMix(11);
    let n = 3000;
    let rs = rows(n, 3);
    let mut df = frame(&rs, |i| if i % 3 == 0 { "a" } else { "b" });
    let names: Vec<String> = (0..9).map(|k| format!("f{k}")).collect();
    for name in &names {
        let values: Vec<Option<String>> = (0..n).map(|_| match r.next() % 260 { 0 => None, v => Some(format!("v{}", v % 250)) }).collect();
        df.with_column(Column::new(name.as_str().into(), values)).unwrap();
    }
    let mut req = request(0);
    req.specs = names.iter().cloned().chain(["g".to_string(), "overall".to_string()]).collect();
    req.baseline = "g=a".into();
    req.max_slices = 10_000;
    let prepared = prepare(&df, &req, Task::Binary).unwrap();
    assert!(prepared.texts.len() == 12 && prepared.cells() > 1);
    let w = weights(&df, Some("w")).unwrap();
    for (a, text) in prepared.texts.iter().enumerate() {
        let spec = SliceSpec::parse(text).unwrap();
        let rows_of = assign(&df, text, &spec, req.max_slices).unwrap();
        assert_eq!(rows_of.keys, prepared.keys[a], "{text}");
        let mut want = vec![(0u64, 0.0, 0.0); rows_of.keys.len()];
        for (i, s) in rows_of.slice_of_row.iter().enumerate() {
            if let Some(s) = s {
                let e = &mut want[s as usize];
                e.0 += 1;
                e.1 += w[i];
                e.2 += w[i] * w[i];
            }
        }
        for (got, want) in prepared.counts[a].iter().zip(&want) {
            assert_eq!(got.0, want.0, "{text}");
            assert!((got.1 - want.1).abs() < 1e-9 && (got.2 - want.2).abs() < 1e-9, "{text}");
        }
    }
}

/// A frame for the streaming tests: a text group, a numeric feature with missing values, weights.
fn stream_frame(n: usize, seed: u64) -> DataFrame {
    let rs = rows(n, seed);
    let mut r = SplitMix(seed ^ 0xABCD);
    let age: Vec<Option<f64>> = (0..n).map(|_| if r.next() % 17 == 0 { None } else { Some((18 + r.next() % 60) as f64) }).collect();
    let region: Vec<&str> = (0..n).map(|i| ["north", "south", "east", "west", "a-much-longer-region-name"][(i * 7 + i / 3) % 5]).collect();
    df!(
        "label" => rs.iter().map(|r| r.0).collect::<Vec<_>>(),
        "score" => rs.iter().map(|r| r.1).collect::<Vec<_>>(),
        "w" => rs.iter().map(|r| r.2).collect::<Vec<_>>(),
        "age" => age,
        "region" => region,
    )
    .unwrap()
}

/// Everything a result says, as JSON (equal JSON = equal numbers, bit for bit as printed).
fn json_of(p: &Prepared, req: &MetricsRequest) -> String {
    serde_json::to_string(&compute_prepared(p, req).unwrap()).unwrap()
}

/// The cells folded batch by batch equal `prepare`'s on the whole frame, whatever the batch size:
/// same cells, multiplicities and order, so every metric, interval and test is the same.
#[test]
fn folding_batches_equals_preparing_the_whole_frame() {
    let df = stream_frame(3000, 5);
    for specs in [vec!["region"], vec!["age:q4"], vec!["region,age:q3", "age:w5"], vec!["age:[30,50]", "region=south"], vec!["age in [20, 40) & region=east"]] {
        let mut req = request(60);
        req.specs = specs.iter().map(|s| s.to_string()).collect();
        req.baseline = "region=north".into();
        let whole = prepare(&df, &req, Task::Binary).unwrap();
        for size in [1, 7, 250, 1000, 3000] {
            let batches: Vec<DataFrame> = (0..df.height()).step_by(size).map(|o| df.slice(o as i64, size)).collect();
            let folded = prepare_batches(&batches, &req, Task::Binary).unwrap();
            assert_eq!(folded.cells(), whole.cells(), "{specs:?} in batches of {size}");
            assert_eq!(folded.mult, whole.mult, "{specs:?} in batches of {size}");
            assert_eq!(folded.p, whole.p, "{specs:?} in batches of {size}");
            assert_eq!(folded.keys, whole.keys, "{specs:?} in batches of {size}");
            assert_eq!(json_of(&folded, &req), json_of(&whole, &req), "{specs:?} in batches of {size}");
        }
    }
    // Regression too.
    let mut req = request(30);
    req.specs = vec!["region,age:q2".into()];
    req.thresholds = vec![];
    let whole = prepare(&df, &req, Task::Regression).unwrap();
    let batches: Vec<DataFrame> = (0..df.height()).step_by(333).map(|o| df.slice(o as i64, 333)).collect();
    assert_eq!(json_of(&prepare_batches(&batches, &req, Task::Regression).unwrap(), &req), json_of(&whole, &req));
}

/// A run larger than one block of `prepare` (its rows copied into score-range blocks, each row's
/// tuple computed from the slice ids as it is copied; an integer label converted on every core)
/// gives the cells of the same rows folded batch by batch, with and without weights.
#[test]
fn a_run_prepared_in_blocks_equals_its_rows_folded() {
    let n = ONE_BLOCK_ROWS + 40_000;
    let mut df = stream_frame(n, 17);
    let label = df.column("label").unwrap().cast(&DataType::Int64).unwrap();
    df.with_column(label).unwrap();
    for weight in [Some("w"), None] {
        let mut req = request(0);
        req.weight = weight.map(str::to_string);
        req.specs = vec!["region,age:q3".into(), "age:[30,50]".into(), "region".into()];
        req.baseline = "region=north".into();
        let whole = prepare(&df, &req, Task::Binary).unwrap();
        let batches: Vec<DataFrame> = (0..n).step_by(100_000).map(|o| df.slice(o as i64, 100_000)).collect();
        let folded = prepare_batches(&batches, &req, Task::Binary).unwrap();
        assert_eq!((folded.cells(), &folded.mult, &folded.p, &folded.y, &folded.keys), (whole.cells(), &whole.mult, &whole.p, &whole.y, &whole.keys), "{weight:?}");
        assert_eq!(json_of(&folded, &req), json_of(&whole, &req), "{weight:?}");
    }
}

/// A batch order does not matter either, and too many slices met across batches is refused.
#[test]
fn folding_is_independent_of_batch_order_and_counts_slices_across_batches() {
    let df = stream_frame(2000, 9);
    let mut req = request(40);
    req.specs = vec!["region,age:q5".into()];
    let batches: Vec<DataFrame> = (0..df.height()).step_by(300).map(|o| df.slice(o as i64, 300)).collect();
    let reversed: Vec<DataFrame> = batches.iter().rev().cloned().collect();
    let a = prepare_batches(&batches, &req, Task::Binary).unwrap();
    let b = prepare_batches(&reversed, &req, Task::Binary).unwrap();
    assert_eq!(json_of(&a, &req), json_of(&b, &req));
    req.specs = vec!["age".into()];
    req.max_slices = 30;
    assert!(prepare_batches(&batches, &req, Task::Binary).is_err(), "60 ages are more than 30 slices");
}

/// What Spark does with a request, done here: rows grouped by the sliced columns as
/// [`push_down_columns`] says (by value, or by merged bucket for columns only numeric cuts read),
/// the exact score, the label and the weight, with a count; each group one row (a bucket as
/// [`bucket_value`]) folded with its count. The cells, hence every number, are those of the rows.
#[test]
fn grouped_rows_with_counts_fold_like_the_rows() {
    let df = stream_frame(4000, 21);
    for specs in [vec!["region"], vec!["region,age:q3", "age:w5"], vec!["age:[30,50]", "age:q4", "region=south"], vec!["age", "age:q5"], vec!["age in [20, 40) & region=east"]] {
        let mut req = request(40);
        req.specs = specs.iter().map(|s| s.to_string()).collect();
        req.baseline = "region=north".into();
        let whole = prepare(&df, &req, Task::Binary).unwrap();
        let mut pass = EdgePass::new(cuts_needing_values(&req).unwrap());
        pass.add(&df).unwrap();
        let resolved = pass.finish();
        let push = push_down_columns(&req, &resolved).unwrap();
        // Group the rows as the cell query would.
        let mut groups: std::collections::BTreeMap<Vec<String>, (Vec<Option<String>>, Vec<Option<f64>>, f64, f64, f64, u64)> = Default::default();
        let region = df.column("region").unwrap().str().unwrap().clone();
        let age = df.column("age").unwrap().f64().unwrap().clone();
        let (y, p, w) = (df.column("label").unwrap().f64().unwrap().clone(), df.column("score").unwrap().f64().unwrap().clone(), df.column("w").unwrap().f64().unwrap().clone());
        for i in 0..df.height() {
            let mut text: Vec<Option<String>> = Vec::new();
            let mut nums: Vec<Option<f64>> = Vec::new();
            let mut key: Vec<String> = Vec::new();
            for c in &push {
                match (c.column.as_str(), &c.edges) {
                    ("region", None) => {
                        text.push(region.get(i).map(str::to_string));
                        key.push(format!("{:?}", region.get(i)));
                    }
                    ("age", None) => {
                        nums.push(age.get(i));
                        key.push(format!("{:?}", age.get(i).map(f64::to_bits)));
                    }
                    ("age", Some(e)) => {
                        let b = age.get(i).map(|x| e.partition_point(|edge| *edge <= x));
                        nums.push(b.map(|b| bucket_value(e, b)));
                        key.push(format!("b{b:?}"));
                    }
                    other => panic!("unexpected push column {other:?}"),
                }
            }
            let (yi, pi, wi) = (y.get(i).unwrap(), p.get(i).unwrap(), w.get(i).unwrap());
            key.extend([yi.to_bits().to_string(), pi.to_bits().to_string(), wi.to_bits().to_string()]);
            groups.entry(key).or_insert((text, nums, yi, pi, wi, 0)).5 += 1;
        }
        let mut cols: Vec<Column> = Vec::new();
        let (mut t_i, mut n_i) = (0, 0);
        for c in &push {
            if c.column == "region" {
                cols.push(Column::new("region".into(), groups.values().map(|g| g.0[t_i].clone()).collect::<Vec<_>>()));
                t_i += 1;
            } else {
                cols.push(Column::new("age".into(), groups.values().map(|g| g.1[n_i]).collect::<Vec<_>>()));
                n_i += 1;
            }
        }
        cols.push(Column::new("label".into(), groups.values().map(|g| g.2).collect::<Vec<_>>()));
        cols.push(Column::new("score".into(), groups.values().map(|g| g.3).collect::<Vec<_>>()));
        cols.push(Column::new("w".into(), groups.values().map(|g| g.4).collect::<Vec<_>>()));
        let counts: Vec<u64> = groups.values().map(|g| g.5).collect();
        let cells = DataFrame::new(counts.len(), cols).unwrap();
        let mut fold = CellFold::new(&req, Task::Binary, resolved).unwrap();
        fold.add_counted(&cells, &counts).unwrap();
        let folded = fold.finish().unwrap();
        assert_eq!(folded.cells(), whole.cells(), "{specs:?}");
        assert_eq!(folded.keys, whole.keys, "{specs:?}");
        assert_eq!(json_of(&folded, &req), json_of(&whole, &req), "{specs:?}");
    }
}

/// Scores grouped into buckets: the tied AUC / AP lie within the reported bounds, and so do the
/// exact values of the rows' own scores, per slice and overall.
#[test]
fn bucket_bounds_hold_the_exact_ranking_metrics() {
    let df = stream_frame(5000, 33);
    let mut req = request(0);
    req.specs = vec!["region".into()];
    let mut widths = Vec::new();
    for grid in [5u32, 20, 100] {
        let exact = compute_prepared(&prepare(&df, &req, Task::Binary).unwrap(), &req).unwrap();
        let p = df.column("score").unwrap().f64().unwrap().clone();
        let bucketed: Vec<f64> = p.iter().map(|x| (x.unwrap() * grid as f64).floor().min(grid as f64 - 1.0) / grid as f64).collect();
        let mut b = df.clone();
        b.with_column(Column::new("score".into(), bucketed)).unwrap();
        let mut prep = prepare(&b, &req, Task::Binary).unwrap();
        prep.score_grid = Some(grid);
        let tied = compute_prepared(&prep, &req).unwrap();
        assert_eq!(tied.slices.len(), exact.slices.len());
        for (t, e) in tied.slices.iter().zip(&exact.slices) {
            for m in ["auc_roc", "auc_pr"] {
                let bound = t.bounds[m];
                let (tv, ev) = (t.metrics[m].value.unwrap(), e.metrics[m].value.unwrap());
                assert!(bound.lower <= tv + 1e-12 && tv <= bound.upper + 1e-12, "{m} of {:?} on {grid}: tied {tv} outside {bound:?}", t.key);
                assert!(bound.lower <= ev + 1e-12 && ev <= bound.upper + 1e-12, "{m} of {:?} on {grid}: exact {ev} outside {bound:?}", t.key);
            }
        }
        widths.push(tied.slices[0].bounds["auc_roc"].upper - tied.slices[0].bounds["auc_roc"].lower);
    }
    // Finer buckets, tighter bounds (about 1/grid of the pairs tie).
    assert!(widths[0] > widths[1] && widths[1] > widths[2] && widths[2] > 0.0 && widths[2] < 0.05, "{widths:?}");
    // Exact scores carry no bounds.
    let exact = compute_prepared(&prepare(&df, &req, Task::Binary).unwrap(), &req).unwrap();
    assert!(exact.slices.iter().all(|s| s.bounds.is_empty()));
}

/// A cell's score read back from its sort key is the row's score, bit for bit (signed zeros,
/// infinities, subnormals and NaNs with payloads included).
#[test]
fn scores_are_read_back_from_their_sort_keys_bit_for_bit() {
    let mut r = SplitMix(23);
    let special = [0.0, -0.0, 1.0, -1.0, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE / 4.0, -f64::MIN_POSITIVE / 4.0, f64::NAN, -f64::NAN, f64::from_bits(0x7ff0_0000_0000_0001), f64::MAX, f64::MIN];
    for x in special.into_iter().chain((0..10_000).map(|_| f64::from_bits(r.next()))) {
        assert_eq!(score_of_key(descending_key(x)).to_bits(), x.to_bits(), "{x:?}");
    }
}
