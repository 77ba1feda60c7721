//! Engine benchmark: all slices of a 2-feature cross (sex × race) × 101 thresholds × all binary
//! metrics, on the Adult demo rows resampled to `STRATA_BENCH_ROWS` (default 1,000,000), with the
//! DataFrame in memory, without and with 200 bootstrap replicates.
//!
//! Two kinds of request: *first* (the run's DataFrame is cached, the engine's prepared cells are
//! not: slicing + sorting + compressing happen) and *repeat* (same model and slices, new
//! thresholds or CI level: the prepared cells are reused, as the server's cache does). Two kinds of
//! data: the demo rows repeated (scores repeat, so rows compress into cells) and the same rows with
//! every score jittered to be distinct (nothing compresses: the worst case).
//!
//! Baselines in the same run: a naive Polars group-by per threshold (four confusion counts only),
//! and fairlearn's MetricFrame on the same rows if `python3 -c 'import fairlearn'` works. fairlearn
//! needs one MetricFrame per threshold (~15 s each on 1M rows here), so it runs on the 11-threshold
//! grid 0:1:0.1 (`STRATA_BENCH_FAIRLEARN_STEP` changes it): its ratio to Strata's 101 thresholds
//! understates Strata's advantage about ninefold. `STRATA_BENCH_FAIRLEARN=0` skips it.
//!
//! `cargo bench -p strata-server --bench engine --profile dev`; `STRATA_BENCH_ONLY=prepare` times
//! only `prepare` (fastest and median of five), to measure how it scales with `STRATA_BENCH_ROWS`
//! (`STRATA_BENCH_DATA=repeated` or `distinct` for one kind of data);
//! `STRATA_BENCH_ONLY=slider` times what moving the threshold asks of the engine (one slicing,
//! one new threshold at a time, with and without 200 bootstrap replicates).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use polars::prelude::*;
use strata_app::model::Task;
use strata_server::eval::sliced::{MetricsRequest, compute_prepared, descending_key, parse_thresholds, prepare, radix_sort};

/// The system allocator, counting the bytes in use and their peak: memory is measured per step,
/// not for the whole process.
struct Counting;

static IN_USE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
/// Counting is on only inside [`measured`], so the timed steps pay nothing for it.
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            let now = IN_USE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    // As the system allocator's own: zeroed memory straight from the kernel is not written to
    // (without this, the default would allocate and then zero every page).
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            let now = IN_USE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        if COUNTING.load(Ordering::Relaxed) {
            IN_USE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            if new_size >= layout.size() {
                let grow = (new_size - layout.size()) as isize;
                let now = IN_USE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                IN_USE.fetch_sub((layout.size() - new_size) as isize, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`; returns its result, the peak of the bytes it had allocated at once, and the bytes it
/// left allocated.
/// (Counts are relative to the start: memory allocated before and freed inside `f` counts
/// negatively and nets out.)
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    IN_USE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    let out = f();
    COUNTING.store(false, Ordering::SeqCst);
    (out, PEAK.load(Ordering::Relaxed).max(0) as usize, IN_USE.load(Ordering::Relaxed).max(0) as usize)
}

fn mib(b: usize) -> f64 {
    b as f64 / 1048576.0
}

fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// The inputs of the physical floor of `prepare` (issue 19), laid out before it is timed: the
/// ~13 bytes a row that slicing and sorting must read (score 8, label 1, two 2-byte slice codes).
struct FloorRows {
    score: Vec<f64>,
    label: Vec<u8>,
    a: Vec<u16>,
    b: Vec<u16>,
}

fn floor_rows(df: &DataFrame) -> FloorRows {
    let codes = |name: &str| -> Vec<u16> {
        let mut seen: std::collections::HashMap<Option<String>, u16> = Default::default();
        let col = df.column(name).unwrap().cast(&DataType::String).unwrap();
        col.str().unwrap().iter().map(|v| {
            let next = seen.len() as u16;
            *seen.entry(v.map(str::to_string)).or_insert(next)
        }).collect()
    };
    FloorRows {
        score: df.column("score_gbt").unwrap().f64().unwrap().iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
        label: df.column("label").unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().iter().map(|v| v == Some(1)).map(u8::from).collect(),
        a: codes("sex"),
        b: codes("race"),
    }
}

/// The floor: one pass over the 13 bytes of every row (per-slice, per-label sums of the scores,
/// and each score's sort key), then an LSD radix sort of the keys with their row numbers (8 bits
/// a pass, passes where every key has the same byte skipped), on one core. Seconds.
fn floor_secs(f: &FloorRows) -> f64 {
    secs(|| {
        let n = f.score.len();
        let mut sums = vec![0.0f64; 1 << 17];
        let mut keys = Vec::with_capacity(n);
        for i in 0..n {
            let x = f.score[i];
            sums[((f.a[i] as usize) << 9 | (f.b[i] as usize) << 1) | f.label[i] as usize] += x;
            keys.push(descending_key(x));
        }
        // The engine's own radix sort: the floor differs from `prepare` only in what it skips.
        let (keys, idx) = radix_sort(keys);
        std::hint::black_box((&sums, &keys, &idx));
    })
}

fn main() {
    let rows: usize = std::env::var("STRATA_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let f = std::fs::File::open(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/adult/eval.parquet")).unwrap();
    // The whole run, as the server caches it (the engine reads four of its columns).
    let base = ParquetReader::new(f).finish().unwrap();
    let used = ["sex", "race", "label", "score_gbt"];
    let reps = rows.div_ceil(base.height());
    let mut df = base.clone();
    for _ in 1..reps {
        df.vstack_mut(&base).unwrap();
    }
    let mut df = df.slice(0, rows);
    df.rechunk_mut();
    // The same rows with distinct scores: a tiny deterministic jitter per row.
    let mut jittered = df.clone();
    let scores: Vec<f64> = df.column("score_gbt").unwrap().f64().unwrap().iter().enumerate().map(|(i, v)| {
        let v = v.unwrap_or(0.5);
        (v + (i as f64 / rows as f64 - 0.5) * 1e-6).clamp(0.0, 1.0)
    }).collect();
    jittered.with_column(Column::new("score_gbt".into(), scores)).unwrap();

    let grid = parse_thresholds("0:1:0.01").unwrap();
    let shifted: Vec<f64> = grid.iter().map(|t| (t + 0.005f64).min(1.0)).collect();
    let req = |bootstrap, thresholds: &Vec<f64>| MetricsRequest {
        label: "label".into(),
        model: "score_gbt".into(),
        class_scores: vec![],
        weight: None,
        specs: vec!["sex,race".into()],
        thresholds: thresholds.clone(),
        ci: 0.95,
        bootstrap,
        seed: 1,
        baseline: "overall".into(),
        min_size: 1,
        max_slices: 500,
        alpha: 0.05,
    };

    // `STRATA_BENCH_ONLY=prepare`: only `prepare`, five times each, reporting the fastest (the
    // least disturbed by the machine's other work) and the median, to measure its scaling.
    // With the floor of issue 19 (see `floor_secs`) timed the same way, interleaved with the
    // preparations so both see the same machine.
    if std::env::var("STRATA_BENCH_ONLY").as_deref() == Ok("prepare") {
        let runs: usize = std::env::var("STRATA_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
        // `STRATA_BENCH_DATA=repeated` or `distinct`: only that data (to profile one of them).
        let only = std::env::var("STRATA_BENCH_DATA").unwrap_or_default();
        for (name, data) in [("repeated rows", &df), ("distinct scores", &jittered)] {
            if !only.is_empty() && !name.starts_with(only.as_str()) {
                continue;
            }
            let inputs = floor_rows(data);
            let (mut t, mut fl): (Vec<f64>, Vec<f64>) = (0..runs)
                .map(|_| (secs(|| drop(prepare(data, &req(0, &grid), Task::Binary).unwrap())), floor_secs(&inputs)))
                .unzip();
            t.sort_by(f64::total_cmp);
            fl.sort_by(f64::total_cmp);
            let (m, fm) = (t[runs / 2], fl[runs / 2]);
            println!(
                "{rows} rows, {name}: prepare fastest {:.3} s, median {m:.3} s (of {runs}); floor (13 B/row scan + radix sort, one core) fastest {:.3} s, median {fm:.3} s; prepare / floor {:.2}x (fastest), {:.2}x (median)",
                t[0], fl[0], t[0] / fl[0], m / fm
            );
        }
        let (_, peak, _) = measured(|| prepare(&jittered, &req(0, &grid), Task::Binary).unwrap());
        println!("prepare peak heap (distinct scores): {:.1} MiB", mib(peak));
        return;
    }
    // `STRATA_BENCH_ONLY=slider`: what the threshold slider asks of the engine — the slicing of
    // one feature (`race`) prepared once, then one new threshold at a time (0.30, 0.31, …) with
    // 200 bootstrap replicates, as the slices and fairness views ask on every move. Baseline in
    // the same run: the same requests without the bootstrap.
    if std::env::var("STRATA_BENCH_ONLY").as_deref() == Ok("slider") {
        let moves: usize = std::env::var("STRATA_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(30).max(2);
        let one = |bootstrap, t: f64| MetricsRequest { specs: vec!["race".into()], ..req(bootstrap, &vec![t]) };
        for (name, data) in [("repeated rows", &df), ("distinct scores", &jittered)] {
            let prep = prepare(data, &one(0, 0.5), Task::Binary).unwrap();
            // The first requests on new cells compute and keep the threshold-free part.
            let first = secs(|| drop(compute_prepared(&prep, &one(0, 0.5)).unwrap()));
            let first_boot = secs(|| drop(compute_prepared(&prep, &one(200, 0.5)).unwrap()));
            let (mut none, mut boot): (Vec<f64>, Vec<f64>) = (0..moves)
                .map(|i| {
                    let t = 0.30 + i as f64 / 100.0;
                    (secs(|| drop(compute_prepared(&prep, &one(0, t)).unwrap())), secs(|| drop(compute_prepared(&prep, &one(200, t + 0.005)).unwrap())))
                })
                .unzip();
            none.sort_by(f64::total_cmp);
            boot.sort_by(f64::total_cmp);
            let p95 = |v: &[f64]| v[((v.len() as f64 * 0.95).ceil() as usize).min(v.len()) - 1];
            println!(
                "{rows} rows, {name} ({} cells): first request on the cells {:.1} ms, with 200 replicates {:.1} ms; then a new threshold, no bootstrap median {:.1} ms p95 {:.1} ms; 200 replicates median {:.1} ms p95 {:.1} ms ({:.1}x the baseline's median), n = {moves}",
                prep.cells(),
                first * 1e3,
                first_boot * 1e3,
                none[moves / 2] * 1e3,
                p95(&none) * 1e3,
                boot[moves / 2] * 1e3,
                p95(&boot) * 1e3,
                boot[moves / 2] / none[moves / 2]
            );
        }
        return;
    }
    // Baseline: one Polars group-by per threshold (Polars' hash grouping on sex × race), then the
    // four confusion counts of each group from its row indices: confusion counts only.
    let naive = secs(|| {
        let score: Vec<f64> = df.column("score_gbt").unwrap().f64().unwrap().into_no_null_iter().collect();
        let label: Vec<bool> = df.column("label").unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().iter().map(|v| v == Some(1)).collect();
        for th in &grid {
            let by = df.group_by(["sex", "race"]).unwrap();
            let mut counts = Vec::new();
            for g in by.get_groups().iter() {
                let rows: Vec<usize> = match g {
                    GroupsIndicator::Idx((_, idx)) => idx.iter().map(|i| *i as usize).collect(),
                    GroupsIndicator::Slice([first, len]) => (first as usize..(first + len) as usize).collect(),
                };
                let mut c = [0u64; 4];
                for r in rows {
                    let pred = score[r] >= *th;
                    c[match (pred, label[r]) { (true, true) => 0, (true, false) => 1, (false, false) => 2, (false, true) => 3 }] += 1;
                }
                counts.push(c);
            }
            assert!(!counts.is_empty());
        }
    });

    let mut table: Vec<(String, f64)> = Vec::new();
    let mut notes = Vec::new();
    let mut memory = Vec::new();
    for (name, data) in [("repeated rows", &df), ("distinct scores", &jittered)] {
        let mut prep = None;
        let t_prep = secs(|| prep = Some(prepare(data, &req(0, &grid), Task::Binary).unwrap()));
        let prep = prep.unwrap();
        notes.push(format!("{name}: {} rows -> {} cells, prepared {:.1} MiB", prep.rows(), prep.cells(), prep.bytes() as f64 / 1048576.0));
        let mut n_slices = 0;
        let t0 = secs(|| n_slices = compute_prepared(&prep, &req(0, &grid)).unwrap().slices.len());
        // A repeat request: new thresholds on the same prepared cells.
        let t0r = secs(|| assert_eq!(compute_prepared(&prep, &req(0, &shifted)).unwrap().slices.len(), n_slices));
        let t200 = secs(|| assert_eq!(compute_prepared(&prep, &req(200, &grid)).unwrap().slices.len(), n_slices));
        table.push((format!("{name}: prepare (slice, sort, compress into cells)"), t_prep));
        table.push((format!("{name}: first request, no bootstrap (prepare + compute)"), t_prep + t0));
        table.push((format!("{name}: repeat request, no bootstrap"), t0r));
        table.push((format!("{name}: first request, 200 bootstrap replicates"), t_prep + t200));
        table.push((format!("{name}: repeat request, 200 bootstrap replicates"), t200));
        drop(prep);
        // Memory, after the timings: a second preparation and request, counted by the allocator.
        let frame = data.estimated_size();
        let four = data.select(used).unwrap().estimated_size();
        let (again, prep_peak, kept) = measured(|| prepare(data, &req(0, &grid), Task::Binary).unwrap());
        let (_, boot_peak, _) = measured(|| compute_prepared(&again, &req(200, &grid)).unwrap());
        drop(again);
        memory.push((name, frame, four, prep_peak, kept, boot_peak));
    }

    // fairlearn on the same rows (repeated), if it is installed.
    let fairlearn_step = std::env::var("STRATA_BENCH_FAIRLEARN_STEP").unwrap_or_else(|_| "0.1".into());
    let fairlearn = (|| {
        if std::env::var("STRATA_BENCH_FAIRLEARN").as_deref() == Ok("0") {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("bench.parquet");
        let mut out = df.select(used).ok()?;
        ParquetWriter::new(std::fs::File::create(&path).ok()?).finish(&mut out).ok()?;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fairlearn_bench.py");
        let o = std::process::Command::new("python3").arg(script).arg(&path).arg(&fairlearn_step).output().ok()?;
        if !o.status.success() {
            eprintln!("fairlearn baseline skipped: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""));
            return None;
        }
        String::from_utf8_lossy(&o.stdout).lines().last()?.trim().parse::<f64>().ok()
    })();

    println!("\nStrata engine benchmark: {rows} rows, slices of sex x race (+ overall), 101 thresholds, all binary metrics");
    println!("{:<72} {:>9} {:>10} {:>12}", "step", "seconds", "vs naive", "vs fairlearn");
    let ratio = |t: f64, b: Option<f64>| b.map(|b| format!("{:.4}x", t / b)).unwrap_or_else(|| "-".into());
    println!("{:<72} {:>9.3} {:>10} {:>12}", "baseline: naive Polars group-by per threshold (4 counts only)", naive, "1.00x", ratio(naive, fairlearn));
    if let Some(fl) = fairlearn {
        let label = format!("baseline: fairlearn MetricFrame, grid 0:1:{fairlearn_step} (7 rates) + AUC");
        println!("{:<72} {:>9.3} {:>10} {:>12}", label, fl, ratio(fl, Some(naive)), "1.00x");
    }
    for (name, t) in &table {
        println!("{:<72} {:>9.3} {:>10} {:>12}", name, t, ratio(*t, Some(naive)), ratio(*t, fairlearn));
    }
    for n in notes {
        println!("{n}");
    }
    println!("\nMemory: heap bytes allocated by each step (counted by the allocator), in MiB and as a multiple of the run's");
    println!("DataFrame (all {} columns, as the server caches it) / of the four columns the request reads", df.width());
    println!("{:<18} {:>16} {:>28} {:>28} {:>28}", "data", "frame / 4 cols", "prepare peak", "cells kept", "request, 200 replicates");
    for (name, frame, four, peak, kept, boot) in &memory {
        let x = |b: &usize| format!("{:.1} ({:.2}x / {:.2}x)", mib(*b), *b as f64 / *frame as f64, *b as f64 / *four as f64);
        println!("{:<18} {:>16} {:>28} {:>28} {:>28}", name, format!("{:.1} / {:.1}", mib(*frame), mib(*four)), x(peak), x(kept), x(boot));
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ? kB");
    println!("peak resident memory of the whole process (both frames, every step, the baseline): {hwm}");
}
