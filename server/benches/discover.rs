//! Slice discovery against the `sliceline` Python package, on the same data in the same run.
//!
//! For each data set, `bench_sliceline.py` (next to this file) generates or encodes the data,
//! writes it as a binary file, and runs the package's `Slicefinder` (max_l = 3, other parameters
//! at their defaults) in a child process with a time and memory cap. Then, on the same file:
//! Strata's exact port of the package (`eval::discover::sliceline`: the same top-k is checked), and
//! Strata's own search (`eval::discover::discover`, level 3, ranked by the gap's lower bound, BY
//! tests) — the "× package" columns are package time / Strata time. Finally the Adult demo through
//! the API's own path (parquet → encoding with ranges of buckets → search).
//!
//! `cargo bench -p strata-server --bench discover --profile dev` (add `--release` for optimised
//! numbers). `DISCOVER_BENCH_BIG=0` skips the 1M × 50 set, `DISCOVER_BENCH_ONLY=1M` runs the sets
//! whose name contains the text; `DISCOVER_PACKAGE_TIMEOUT` (seconds, default 300) caps each
//! package run. Without Python's `sliceline` the package column says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use polars::prelude::*;
use strata_app::model::Task;
use strata_server::eval::discover::sliceline::{SliceLineParams, sliceline};
use strata_server::eval::discover::{Feature, Params, Scoring, Target, Worse, discover, frame};
use strata_server::service::discover::MAX_CANDIDATES;

/// A data set as `bench_sliceline.py` writes it: codes per feature, cardinalities, errors.
struct Data {
    codes: Vec<Vec<u32>>,
    cards: Vec<u32>,
    errors: Vec<f64>,
}

fn read_bin(path: &Path) -> Data {
    let buf = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let u32_at = |o: usize| u32::from_le_bytes(buf[o..o + 4].try_into().expect("4 bytes"));
    assert_eq!(&buf[..4], b"SLB1", "{}: not a bench_sliceline.py file", path.display());
    let (n, nf) = (u32_at(4) as usize, u32_at(8) as usize);
    let cards: Vec<u32> = (0..nf).map(|f| u32_at(12 + 4 * f)).collect();
    let mut o = 12 + 4 * nf;
    let mut codes = Vec::with_capacity(nf);
    for _ in 0..nf {
        codes.push((0..n).map(|r| u32_at(o + 4 * r)).collect::<Vec<u32>>());
        o += 4 * n;
    }
    let errors = (0..n).map(|r| f64::from_le_bytes(buf[o + 8 * r..o + 8 * r + 8].try_into().expect("8 bytes"))).collect();
    Data { codes, cards, errors }
}

/// Runs the package through the script; its JSON answer, or why not.
fn package(args: &[&str], out: &Path, timeout: f64) -> Result<serde_json::Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/bench_sliceline.py");
    let o = Command::new("python3")
        .arg(&script)
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--timeout")
        .arg(timeout.to_string())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !o.status.success() {
        return Err(format!("bench_sliceline.py failed: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")));
    }
    serde_json::from_slice(&o.stdout).map_err(|e| format!("bench_sliceline.py output: {e}"))
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("one run"))
}

/// Strata's search on plain categorical codes (no ranges: the package has none) to `level`.
fn strata_search(d: &Data, min_support: u64, level: usize) -> (f64, strata_server::eval::discover::Discovery) {
    let features: Vec<Feature> = d
        .codes
        .iter()
        .zip(&d.cards)
        .enumerate()
        .map(|(i, (c, k))| Feature { name: format!("f{i}"), codes: c.clone(), labels: (0..*k).map(|v| v.to_string()).collect(), ordered_buckets: None })
        .collect();
    let target = Target::Ratio { num: d.errors.clone(), den: vec![1.0; d.errors.len()], sqrt: false };
    let p = Params { max_level: level, min_support, top_k: 10, scoring: Scoring::Gap, max_candidates: MAX_CANDIDATES, ..Params::default() };
    best_of(if d.errors.len() > 200_000 { 1 } else { 3 }, || discover(&features, &target, Worse::Higher, &p).expect("valid"))
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let timeout: f64 = std::env::var("DISCOVER_PACKAGE_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(300.0);
    let big = std::env::var("DISCOVER_BENCH_BIG").map(|v| v != "0").unwrap_or(true);
    let adult_csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/adult/eval.csv");
    let adult_csv = adult_csv.to_string_lossy().to_string();
    let synthetic = |rows: &str, features: &str| vec!["--rows".to_string(), rows.into(), "--features".into(), features.into()];
    // (name, the script's arguments, max_l: the package's and the searches' level)
    let mut sets: Vec<(&str, Vec<String>, usize)> = vec![
        ("Adult 16k × 13 (binned)", vec!["--adult-csv".into(), adult_csv], 3),
        ("10k × 5, cardinality 1000", [synthetic("10000", "5"), vec!["--cardinality".into(), "1000".into()]].concat(), 3),
        ("100k × 20 mixed", synthetic("100000", "20"), 3),
        ("100k × 20 mixed, level 2", [synthetic("100000", "20"), vec!["--max-l".into(), "2".into()]].concat(), 2),
    ];
    if big {
        sets.push(("1M × 50 mixed", synthetic("1000000", "50"), 3));
    }
    println!("| data | level | package | package peak | Strata port of the package | same top-k | × package | Strata search (BY) | examined | × package |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let only = std::env::var("DISCOVER_BENCH_ONLY").unwrap_or_default();
    for (i, (name, args, level)) in sets.iter().enumerate().filter(|(_, s)| s.0.contains(only.as_str())) {
        let out: PathBuf = tmp.path().join(format!("set{i}.bin"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let pkg = package(&args, &out, timeout);
        if !out.exists() {
            println!("| {name} | {level} | {} | | | | | | | |", pkg.err().unwrap_or_default());
            continue;
        }
        let d = read_bin(&out);
        let pkg_secs = pkg.as_ref().ok().and_then(|j| j["seconds"].as_f64());
        let pkg_text = match &pkg {
            Ok(j) => match j["seconds"].as_f64() {
                Some(s) => format!("{s:.2} s"),
                None => j["seconds"].as_str().map(str::to_string).unwrap_or_else(|| j["error"].to_string()),
            },
            Err(e) => e.clone(),
        };
        let peak = pkg.as_ref().ok().and_then(|j| j["peak_rss_mb"].as_f64()).map(|m| format!("{m:.0} MB")).unwrap_or_default();
        let params = SliceLineParams { max_l: *level, ..SliceLineParams::default() };
        let (port_secs, res) = best_of(if d.errors.len() > 200_000 { 1 } else { 3 }, || sliceline(&d.codes, &d.cards, &d.errors, &params));
        let same = match pkg.as_ref().ok().and_then(|j| j["top"].as_array().cloned()) {
            Some(top) if pkg_secs.is_some() => {
                let equal = top.len() == res.top.len()
                    && top.iter().zip(&res.top).all(|(e, s)| {
                        let items: Vec<(u32, u32)> = e["items"].as_array().map(|a| a.iter().map(|p| (p[0].as_u64().unwrap_or(0) as u32, p[1].as_u64().unwrap_or(0) as u32)).collect()).unwrap_or_default();
                        items == s.items && e["slice_size"].as_f64() == Some(s.size as f64)
                    });
                if equal { format!("yes ({} slices)", top.len()) } else { "NO".into() }
            }
            _ => "—".into(),
        };
        let min_support = ((d.errors.len() / 100) as u64).max(30);
        let (strata_secs, found) = strata_search(&d, min_support, *level);
        let ratio = |ours: f64| pkg_secs.map(|p| format!("{:.0}×", p / ours)).unwrap_or_else(|| "—".into());
        println!(
            "| {name} | {level} | {pkg_text} | {peak} | {port_secs:.3} s | {same} | {} | {strata_secs:.3} s ({} found{}) | {} | {} |",
            ratio(port_secs),
            found.slices.len(),
            if found.truncated { ", candidate limit hit" } else { "" },
            found.examined,
            ratio(strata_secs)
        );
    }

    // The Adult demo as the API searches it: features from the parquet, numeric ones in quantile
    // buckets with ranges, the logistic model's error rate at 0.5, 1 % minimum support.
    let f = std::fs::File::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/adult/eval.parquet")).expect("demo parquet");
    let df = ParquetReader::new(f).finish().expect("parquet");
    let numeric = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"];
    let columns: Vec<(String, bool)> = ["age", "workclass", "education", "education_num", "marital_status", "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country"]
        .iter()
        .map(|c| (c.to_string(), numeric.contains(c)))
        .collect();
    for level in [1, 2, 3] {
        let (secs, found) = best_of(3, || {
            let enc = frame::encode(&df, &columns, 5).expect("encode");
            let (t, w) = frame::target(&df, Task::Binary, "label", "score_logreg", None, "error_rate", 0.5).expect("target");
            discover(&enc.features, &t, w, &Params { max_level: level, min_support: 160, top_k: 20, max_candidates: MAX_CANDIDATES, ..Params::default() }).expect("search")
        });
        println!(
            "Adult through the API's path, level {level}: {secs:.3} s (encode + search); examined {} {:?}, pruned {}, truncated {}, {} slices found",
            found.examined, found.per_level, found.pruned, found.truncated, found.slices.len()
        );
    }
}
