//! Ingest and load benchmark: a 1,000,000-row run (the Adult demo rows repeated, ids made unique).
//!
//! `cargo bench -p strata-server --bench load` prints a table of wall times, the peak resident
//! memory, and ratios against baselines measured in the same run (a bare CSV parse of the same file;
//! decoding the Parquet bytes without the database), because this machine is shared and noisy.
//! `STRATA_BENCH_ROWS` changes the row count; `STRATA_BENCH_ONLY=ingest` times only the bare parse and
//! the ingest, `STRATA_BENCH_RUNS` times each (default 3).

use std::io::Write;
use std::time::Instant;

use strata_app::model::IngestSpec;
use strata_server::ingest::ingest_file;
use strata_server::service::AppState;
use strata_server::settings::{DatabaseTarget, Limits};
use strata_server::store::{Store, decode_frame};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let rows: usize = std::env::var("STRATA_BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/adult/eval.csv");
    let text = std::fs::read_to_string(&src).expect("demo/adult/eval.csv");
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let body: Vec<&str> = lines.collect();
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("big.csv");
    // STRATA_BENCH_WIDE=1: a synthetic wide file instead (id, label, 2 scores, 96 numeric features).
    let wide = std::env::var("STRATA_BENCH_WIDE").is_ok_and(|v| v == "1");
    if wide {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv_path).unwrap());
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        write!(f, "example_id,label,score_logreg,score_gbt").unwrap();
        for j in 0..96 {
            write!(f, ",f{j}").unwrap();
        }
        writeln!(f).unwrap();
        for i in 0..rows {
            let (a, b) = (next(), next());
            write!(f, "x{i:07},{},{a:.6},{b:.6}", u8::from(next() < a)).unwrap();
            for _ in 0..96 {
                write!(f, ",{:.4}", next() * 100.0).unwrap();
            }
            writeln!(f).unwrap();
        }
    } else {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv_path).unwrap());
        writeln!(f, "{header}").unwrap();
        for i in 0..rows {
            let line = body[i % body.len()];
            // example_id is the first column: make it unique.
            let rest = line.split_once(',').map(|(_, r)| r).unwrap_or("");
            writeln!(f, "x{i:07},{rest}").unwrap();
        }
    }
    let csv_bytes = std::fs::metadata(&csv_path).unwrap().len();
    let mut table: Vec<(String, f64, String)> = Vec::new();

    // Baseline 1: parse the CSV with the csv crate and do nothing else.
    let t = Instant::now();
    let mut rdr = csv::Reader::from_path(&csv_path).unwrap();
    let mut rec = csv::ByteRecord::new();
    let mut n = 0usize;
    while rdr.read_byte_record(&mut rec).unwrap() {
        n += rec.len();
    }
    assert!(n > 0);
    let bare_parse = t.elapsed().as_secs_f64();
    table.push(("baseline: bare CSV parse (csv crate)".into(), bare_parse, "1.00x".into()));

    let spec = IngestSpec { name: "bench".into(), label: Some("label".into()), scores: Some(vec!["score_logreg".into(), "score_gbt".into()]), ..Default::default() };
    // STRATA_BENCH_ONLY=ingest: the bare parse and the ingest only, STRATA_BENCH_RUNS times each
    // (alternating), fastest and median (for profiling the ingest and for noisy machines).
    if std::env::var("STRATA_BENCH_ONLY").is_ok_and(|v| v == "ingest") {
        let runs: usize = std::env::var("STRATA_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
        let (mut parse, mut ingest) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            let mut rdr = csv::Reader::from_path(&csv_path).unwrap();
            let mut n = 0usize;
            while rdr.read_byte_record(&mut rec).unwrap() {
                n += rec.len();
            }
            assert!(n > 0);
            parse.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let ing = ingest_file(&csv_path, "big.csv", &spec).expect("ingest");
            ingest.push(t.elapsed().as_secs_f64());
            assert_eq!(ing.frame.height(), rows);
        }
        let stats = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[0], v[v.len() / 2])
        };
        let ((p0, p1), (i0, i1)) = (stats(&mut parse), stats(&mut ingest));
        println!("\nStrata ingest: {rows} rows, CSV {:.1} MiB, {runs} runs (fastest / median)", csv_bytes as f64 / 1048576.0);
        println!("baseline: bare CSV parse (csv crate, one core)  {p0:.3} / {p1:.3} s");
        println!("ingest CSV -> validated DataFrame               {i0:.3} / {i1:.3} s  ({:.2}x / {:.2}x bare parse)", i0 / p0, i1 / p1);
        println!("peak resident memory (VmHWM): {:.0} MiB", peak_rss_mib());
        return;
    }
    let t = Instant::now();
    let ing = ingest_file(&csv_path, "big.csv", &spec).expect("ingest");
    let ingest = t.elapsed().as_secs_f64();
    table.push((format!("ingest CSV -> validated DataFrame ({} x {})", ing.frame.height(), ing.frame.width()), ingest, format!("{:.2}x bare parse", ingest / bare_parse)));

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let db_dir = tempfile::tempdir().unwrap();
    let tmp = db_dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let store = rt.block_on(Store::connect(&DatabaseTarget::Sqlite(db_dir.path().join("bench.db")))).unwrap();
    let state = AppState::new(store.clone(), 8 << 30, Limits::default(), tmp);

    let t = Instant::now();
    let id = rt.block_on(state.ingest(&csv_path, "big.csv", spec.clone(), vec![])).expect("store");
    let full = t.elapsed().as_secs_f64();
    table.push(("upload path: ingest + summaries + Parquet + SQLite write".into(), full, format!("{:.2}x ingest", full / ingest)));

    let t = Instant::now();
    let bytes = rt.block_on(store.load_run_data(&id)).unwrap().unwrap();
    let read = t.elapsed().as_secs_f64();
    let stored = bytes.len();
    let t = Instant::now();
    let df = decode_frame(bytes.clone()).unwrap();
    let decode = t.elapsed().as_secs_f64();
    assert_eq!(df.height(), rows);
    table.push(("baseline: Parquet bytes -> DataFrame (no database)".into(), decode, "1.00x".into()));
    table.push(("load: SQLite blob read".into(), read, format!("{:.2}x decode", read / decode)));
    let t = Instant::now();
    let state2 = AppState::new(store.clone(), 8 << 30, Limits::default(), db_dir.path().join("tmp"));
    let frame = rt.block_on(state2.frame(&id)).unwrap();
    let load = t.elapsed().as_secs_f64();
    table.push(("load run -> DataFrame (cold cache: read + decode)".into(), load, format!("{:.2}x decode", load / decode)));
    let t = Instant::now();
    let again = rt.block_on(state2.frame(&id)).unwrap();
    let cached = t.elapsed().as_secs_f64();
    assert!(std::sync::Arc::ptr_eq(&frame, &again));
    table.push(("load run again (cache hit)".into(), cached, format!("{:.5}x decode", cached / decode)));

    println!("\nStrata load benchmark: {rows} rows, CSV {:.1} MiB, stored Parquet {:.1} MiB, DataFrame {:.1} MiB",
        csv_bytes as f64 / 1048576.0, stored as f64 / 1048576.0, frame.estimated_size() as f64 / 1048576.0);
    println!("{:<62} {:>10} {:>18}", "step", "seconds", "ratio");
    for (name, secs, ratio) in &table {
        println!("{name:<62} {secs:>10.3} {ratio:>18}");
    }
    println!("peak resident memory (VmHWM): {:.0} MiB", peak_rss_mib());
}
