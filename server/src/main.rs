//! `strata`: serve the dashboard, or ingest a file from the command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use strata_app::model::IngestSpec;
use strata_server::service::{AppState, Attachment};
use strata_server::settings::{DatabaseTarget, Limits, Settings};
use strata_server::store::Store;

#[derive(Parser)]
#[command(name = "strata", version, about = "Look inside your models: sliced metrics, fairness, what-if.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Where the SQLite database and temporary uploads live.
    #[arg(long, env = "STRATA_DATA_DIR", default_value = "./strata-data")]
    data_dir: PathBuf,
    /// postgres://… to use PostgreSQL; unset = SQLite file in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Largest accepted upload, in MiB.
    #[arg(long, env = "STRATA_MAX_UPLOAD_MB", default_value_t = 2048)]
    max_upload_mb: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the dashboard and the API.
    Serve {
        #[arg(long, env = "STRATA_ADDR", default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        #[command(flatten)]
        common: Common,
        /// Do not load the demo runs into an empty database.
        #[arg(long)]
        no_demo: bool,
        /// Byte budget of the in-memory run cache, in MiB.
        #[arg(long, env = "STRATA_CACHE_MB", default_value_t = 2048)]
        cache_mb: usize,
        /// The site built by cargo-leptos (WASM, JS, CSS, public files).
        #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
        site_root: PathBuf,
    },
    /// Validate a CSV / Parquet / JSON Lines file and store it as a run; prints the run's id.
    Ingest {
        file: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        label: Option<String>,
        /// A model's score column; repeat for several models.
        #[arg(long = "score")]
        scores: Vec<String>,
        #[arg(long)]
        prediction: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        timestamp: Option<String>,
        #[arg(long)]
        weight: Option<String>,
        /// Treat a numeric column as categorical; repeatable.
        #[arg(long)]
        categorical: Vec<String>,
        /// Leave a column out; repeatable.
        #[arg(long)]
        ignore: Vec<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// An ONNX model file to store with the run; repeatable.
        #[arg(long = "model")]
        models: Vec<PathBuf>,
        /// CSV delimiter (sniffed when absent).
        #[arg(long)]
        delimiter: Option<char>,
        #[command(flatten)]
        common: Common,
    },
}

fn settings(common: &Common, addr: SocketAddr, cache_mb: usize, demo: bool, site_root: PathBuf) -> anyhow::Result<Settings> {
    Ok(Settings {
        addr,
        database: DatabaseTarget::resolve(common.database_url.as_deref(), &common.data_dir)?,
        data_dir: common.data_dir.clone(),
        cache_bytes: cache_mb * 1024 * 1024,
        limits: Limits { max_upload_bytes: common.max_upload_mb * 1024 * 1024, ..Limits::default() },
        demo,
        site_root,
    })
}

async fn open_state(s: &Settings) -> anyhow::Result<AppState> {
    let tmp = s.data_dir.join("tmp");
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let store = Store::connect(&s.database).await.with_context(|| format!("opening the database {:?}", s.database))?;
    Ok(AppState::new(store, s.cache_bytes, s.limits.clone(), tmp))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { addr, common, no_demo, cache_mb, site_root } => {
            let s = settings(&common, addr, cache_mb, !no_demo, site_root)?;
            tracing::info!(database = ?s.database, data_dir = %s.data_dir.display(), "starting");
            let state = open_state(&s).await?;
            if s.demo {
                let n = strata_server::demo::load_if_empty(&state).await.context("loading the demo runs")?;
                if n > 0 {
                    tracing::info!(runs = n, "demo runs loaded");
                }
            }
            if !s.site_root.join("pkg").exists() {
                tracing::warn!(site_root = %s.site_root.display(), "no built site here: pages will not hydrate (build with cargo leptos build)");
            }
            let app = strata_server::router(state, strata_server::leptos_options(&s.site_root, s.addr));
            let listener = tokio::net::TcpListener::bind(s.addr).await.with_context(|| format!("binding {}", s.addr))?;
            tracing::info!("serving on http://{}", s.addr);
            axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            Ok(())
        }
        Command::Ingest { file, name, label, scores, prediction, id, timestamp, weight, categorical, ignore, tags, models, delimiter, common } => {
            let s = settings(&common, "127.0.0.1:0".parse()?, 64, false, PathBuf::new())?;
            let state = open_state(&s).await?;
            let spec = IngestSpec {
                name,
                label,
                scores: (!scores.is_empty()).then_some(scores),
                prediction,
                id,
                timestamp,
                weight,
                categorical,
                ignore,
                tags,
                delimiter,
                ..Default::default()
            };
            let mut attachments = Vec::new();
            for m in models {
                let content = std::fs::read(&m).with_context(|| format!("reading model {}", m.display()))?;
                let name = m.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model.onnx".into());
                attachments.push(Attachment { name, media_type: "application/onnx".into(), model: None, content });
            }
            let file_name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let id = state.ingest(&file, &file_name, spec, attachments).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{id}");
            Ok(())
        }
    }
}
