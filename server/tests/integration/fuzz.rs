//! Fuzzing ingest (proptest): random bytes, CSV and JSON Lines built from hostile cells and keys,
//! and mutated Parquet files. Whatever the input, ingest never panics and answers either a run
//! table or a client error (a 4xx), within small limits. The test command runs 200 cases per
//! kind; `STRATA_FUZZ_CASES=20000 cargo test -p strata-server --test integration fuzz` runs longer.

use proptest::prelude::*;
use strata_app::model::IngestSpec;
use strata_server::ingest::{IngestLimits, ingest_file_within};

fn cases() -> u32 {
    std::env::var("STRATA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

/// The cases are drawn from a fixed seed, so the test command runs the same inputs every time
/// (`STRATA_FUZZ_SEED=N` for others, `STRATA_FUZZ_SEED=random` for fresh ones). A random run once
/// found a mutated Parquet page header that made polars abort on a 2^61-byte allocation; ingest
/// now checks every page header first (see `every_single_byte_change_of_a_parquet_file_…`).
fn seed() -> proptest::test_runner::RngSeed {
    match std::env::var("STRATA_FUZZ_SEED").ok().as_deref() {
        Some("random") => proptest::test_runner::RngSeed::Random,
        Some(n) => proptest::test_runner::RngSeed::Fixed(n.parse().expect("STRATA_FUZZ_SEED: a number or 'random'")),
        None => proptest::test_runner::RngSeed::Fixed(0x5747_a7a0),
    }
}

const LIMITS: IngestLimits = IngestLimits { max_rows: 5_000, max_columns: 50, max_cells: 20_000, max_uncompressed_bytes: 8 << 20, stop_after_rows: None };

/// Ingests `bytes` saved as `name` with one of a few specs; panics (failing the case) on a panic
/// or on an error that is not the client's.
fn check(name: &str, bytes: &[u8], spec_kind: u8) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let spec = match spec_kind % 3 {
        0 => IngestSpec { name: "fuzz".into(), ..Default::default() },
        1 => IngestSpec { name: "fuzz".into(), label: Some("label".into()), scores: Some(vec!["score".into()]), ..Default::default() },
        _ => IngestSpec { name: "fuzz".into(), label: Some("a".into()), id: Some("b".into()), categorical: vec!["c".into()], ..Default::default() },
    };
    match ingest_file_within(&path, name, &spec, &LIMITS) {
        Ok(ing) => assert!(ing.frame.height() as u64 <= LIMITS.max_rows && ing.frame.width() <= LIMITS.max_columns),
        Err(e) => assert!(e.is_client_error(), "{name}: a server-side error for client input: {e:?}"),
    }
}

/// Cells that have broken parsers before: numbers at the edges, markers of missing values,
/// quotes, separators, dates, non-ASCII, control characters.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-0".to_string()),
        Just("1e308".to_string()),
        Just("1e-320".to_string()),
        Just("true".to_string()),
        Just("\"".to_string()),
        Just("\"a,b\"".to_string()),
        Just("2024-02-30".to_string()),
        Just("2024-01-31T13:45:00Z".to_string()),
        Just("é∑😀".to_string()),
        Just("\u{0}\u{1b}".to_string()),
        (0u8..2).prop_map(|b| b.to_string()),
        (-1e6f64..1e6).prop_map(|x| x.to_string()),
        "[a-z]{0,12}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![Just("label".to_string()), Just("score".to_string()), Just("a".to_string()), Just("b".to_string()), Just("c".to_string()), Just(String::new()), "[a-zé ]{1,6}"]
}

fn csv_text() -> impl Strategy<Value = String> {
    (proptest::collection::vec(name(), 1..8), proptest::collection::vec(proptest::collection::vec(cell(), 0..9), 0..40), prop_oneof![Just(','), Just(';'), Just('\t')]).prop_map(|(header, rows, sep)| {
        let sep = sep.to_string();
        let mut out = header.join(&sep);
        out.push('\n');
        for r in rows {
            out.push_str(&r.join(&sep));
            out.push('\n');
        }
        out
    })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        (-1e9f64..1e9).prop_map(|x| serde_json::json!(x)),
        any::<i64>().prop_map(|x| serde_json::json!(x)),
        cell().prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| prop_oneof![proptest::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::Array), proptest::collection::btree_map("[a-c]", inner, 0..3).prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))])
}

fn jsonl_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::collection::btree_map(name(), json_value(), 0..6), 0..40).prop_map(|rows| {
        rows.into_iter().map(|r| serde_json::Value::Object(r.into_iter().collect()).to_string() + "\n").collect::<String>()
    })
}

/// A small valid Parquet file (written by Polars) to mutate.
fn parquet_seed() -> Vec<u8> {
    use polars::prelude::*;
    let mut df = df!("label" => [1i64, 0, 1, 0], "score" => [0.9, 0.2, 0.7, 0.4], "a" => ["x", "y", "x", "z"]).unwrap();
    let mut out = Vec::new();
    ParquetWriter::new(&mut out).finish(&mut df).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, rng_seed: seed(), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), ext in prop_oneof![Just("csv"), Just("jsonl"), Just("parquet"), Just("tsv")], spec in any::<u8>()) {
        check(&format!("f.{ext}"), &bytes, spec);
    }

    #[test]
    fn hostile_csv_never_panics(text in csv_text(), spec in any::<u8>()) {
        check("f.csv", text.as_bytes(), spec);
    }

    #[test]
    fn hostile_json_lines_never_panic(text in jsonl_text(), spec in any::<u8>()) {
        check("f.jsonl", text.as_bytes(), spec);
    }

    #[test]
    fn mutated_parquet_never_panics(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>(), truncate in any::<bool>(), spec in any::<u8>()) {
        let mut bytes = parquet_seed();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= b | 1;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()).max(4));
        }
        check("f.parquet", &bytes, spec);
    }
}

/// Every single-byte change of a small Parquet file (five patterns at every offset), run in a fixed
/// order: each is read or refused as a client error. Among them are page headers declaring a
/// negative value count, which once made polars abort the process on a 2^61-byte allocation.
#[test]
fn every_single_byte_change_of_a_parquet_file_is_read_or_refused() {
    let seed = parquet_seed();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.parquet");
    let mut header_refusals = 0;
    for i in 0..seed.len() {
        for x in [0x01u8, 0x40, 0x7f, 0x80, 0xff] {
            let mut bytes = seed.clone();
            bytes[i] ^= x;
            std::fs::write(&path, &bytes).unwrap();
            let spec = IngestSpec { name: "fuzz".into(), ..Default::default() };
            match ingest_file_within(&path, "f.parquet", &spec, &LIMITS) {
                Ok(ing) => assert!(ing.frame.height() as u64 <= LIMITS.max_rows),
                Err(e) => {
                    assert!(e.is_client_error(), "byte {i} ^ {x:#x}: a server-side error for client input: {e:?}");
                    header_refusals += usize::from(e.to_string().contains("page header with a negative"));
                }
            }
        }
    }
    assert!(header_refusals > 0, "no change made a page header impossible: the test no longer covers the case it was written for");
}
