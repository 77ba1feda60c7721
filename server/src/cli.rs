//! The command line: `strata serve | ingest | gates | validate` (parsed by clap) and what each
//! does, locally on the database or against a running server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use strata_app::model::{GateSet, GateSetVersion, IngestSpec, Validation, Verdict};
use strata_server::service::{AppState, Attachment};
use strata_server::outbound::Outbound;
use strata_server::secrets::SecretBox;
use strata_server::settings::{DatabaseTarget, Limits, Settings};
use strata_server::store::Store;

#[derive(Parser)]
#[command(name = "strata", version, about = "Look inside your models: sliced metrics, fairness, what-if.")]
pub struct Cli {
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
    /// Largest amount of bootstrap values one analysis request may keep, in MiB (replicates × slices ×
    /// values per slice × 8 bytes); a request over it is a 400 that says how to shrink it.
    #[arg(long, env = "STRATA_MAX_ANALYSIS_MB", default_value_t = 1024)]
    max_analysis_mb: u64,
    /// Largest number of rows a run may have.
    #[arg(long, env = "STRATA_MAX_ROWS", default_value_t = 50_000_000)]
    max_rows: u64,
    /// Largest number of columns a run may have.
    #[arg(long, env = "STRATA_MAX_COLUMNS", default_value_t = 2000)]
    max_columns: usize,
    /// Largest rows × columns of a run.
    #[arg(long, env = "STRATA_MAX_CELLS", default_value_t = 500_000_000)]
    max_cells: u64,
    /// Largest uncompressed size a Parquet file may declare in its footer, in MiB.
    #[arg(long, env = "STRATA_MAX_UNCOMPRESSED_MB", default_value_t = 8192)]
    max_uncompressed_mb: u64,
    /// Largest model file (ONNX) stored with a run, in MiB.
    #[arg(long, env = "STRATA_MAX_MODEL_MB", default_value_t = 256)]
    max_model_mb: u64,
    /// Model predictions one request may make (partial dependence, attacks, flip rates,
    /// predictions); over it is a 400 that gives the cost and how to shrink it.
    #[arg(long, env = "STRATA_MAX_PREDICTIONS", default_value_t = 1_000_000)]
    max_predictions: u64,
    /// CPU-heavy jobs (analyses, ingest, model calls) run at once; default: the number of cores.
    #[arg(long, env = "STRATA_WORKERS")]
    workers: Option<usize>,
    /// Jobs that may wait for a worker; past it a request is answered 503 with Retry-After.
    #[arg(long, env = "STRATA_MAX_QUEUE", default_value_t = 64)]
    max_queue: usize,
    /// Longest a request may take, in seconds (uploads included); then 503.
    #[arg(long, env = "STRATA_REQUEST_TIMEOUT_S", default_value_t = 300)]
    request_timeout_s: u64,
    /// Longest one Spark query of an external run in Spark may take, in seconds; then Spark is
    /// asked to cancel it and the request fails with that.
    #[arg(long, env = "STRATA_SPARK_QUERY_TIMEOUT_S", default_value_t = 240)]
    spark_query_timeout_s: u64,
    /// Hosts model endpoints and webhooks may call, comma-separated: `host`, `host:port`,
    /// `*.domain`, an IP address, or `*` for any public host. Empty: no outbound calls.
    #[arg(long, env = "STRATA_OUTBOUND_ALLOW", default_value = "")]
    outbound_allow: String,
    /// Let outbound calls reach loopback, private and link-local addresses (cloud metadata
    /// addresses stay refused).
    #[arg(long, env = "STRATA_OUTBOUND_PRIVATE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    outbound_private: bool,
    /// Largest answer read from a model endpoint or webhook, in MiB.
    #[arg(long, env = "STRATA_MAX_RESPONSE_MB", default_value_t = 16)]
    max_response_mb: u64,
    /// Seals stored endpoint tokens and webhook secrets (at least 32 characters); unset: a random
    /// key kept in `<data dir>/secret.key`.
    #[arg(long, env = "STRATA_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
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
        /// Names the server answers to besides its address, comma-separated (`host` or `host:port`,
    /// e.g. the name behind a reverse proxy). Requests with another Host are refused (DNS
    /// rebinding); state-changing requests from other sites' pages too.
    #[arg(long, env = "STRATA_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// The site built by cargo-leptos (WASM, JS, CSS, public files).
        #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
        site_root: PathBuf,
        /// A directory external runs' Parquet datasets may be read from in team mode; repeatable
        /// (env: comma-separated). Without one, team mode refuses every external path; the open
        /// single-user mode reads any path the server can.
        #[arg(long = "external-root", env = "STRATA_EXTERNAL_ROOTS", value_delimiter = ',')]
        external_roots: Vec<PathBuf>,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Accounts: add, list, change a role or password, disable, enable; project grants.
    Users {
        #[command(subcommand)]
        action: UsersAction,
        #[command(flatten)]
        common: Common,
    },
    /// API tokens for an account (for CI: a service account with the `validate` scope).
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
        #[command(flatten)]
        common: Common,
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
        /// The project the run joins (its evaluation history).
        #[arg(long)]
        project: Option<String>,
        /// The model version the run evaluates, e.g. v12.
        #[arg(long = "model-version")]
        version: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Register a Parquet dataset (a file, a directory read recursively with hive partitions, or
    /// a glob), or a table or files in Spark (through Spark Connect), as an external run: its
    /// schema, row count and roles are stored, never its rows; prints the run's id.
    Register {
        /// The dataset: `/data/preds/`, `/data/preds/part-0.parquet` or `'/data/preds/*.parquet'`.
        #[arg(long, required_unless_present = "spark", conflicts_with = "spark")]
        parquet: Option<PathBuf>,
        /// A Spark Connect address instead (`sc://host:15002`, `;token=…` when it needs one),
        /// with --table or --path.
        #[arg(long, requires = "spark_what")]
        spark: Option<String>,
        /// With --spark: the table or view (`db.preds`).
        #[arg(long, group = "spark_what")]
        table: Option<String>,
        /// With --spark: files Spark reads (its path syntax), as --format.
        #[arg(long = "path", group = "spark_what")]
        spark_path: Option<String>,
        /// With --path: parquet (default), delta or orc.
        #[arg(long, requires = "spark_path")]
        format: Option<String>,
        #[arg(long)]
        label: Option<String>,
        /// The models' score columns, comma-separated or repeated.
        #[arg(long, value_delimiter = ',')]
        scores: Vec<String>,
        /// Default: the path's last part.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        weight: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        timestamp: Option<String>,
        #[arg(long = "model-version")]
        version: Option<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Save a project's gates from a JSON file (a new version; printed back with its number), or
    /// print the newest version when no file is given.
    Gates {
        #[arg(long)]
        project: String,
        /// A JSON gate set (see the README); omit to print the current gates.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Talk to a running Strata instead of opening the database.
        #[arg(long, env = "STRATA_SERVER")]
        server: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Judge a run against its project's gates. Exit code 0: every gate passed; 1: a gate failed
    /// on some slice; 2: it could not be validated (no such run, no gates, server down, …).
    Validate {
        #[arg(long)]
        project: String,
        /// The run's id.
        #[arg(long)]
        run: String,
        /// A stored version of the gates; the newest when absent.
        #[arg(long)]
        gates_version: Option<i64>,
        /// Judge the model with the project's rules (model assertions) applied to its decisions.
        #[arg(long)]
        rules: bool,
        /// Apply this stored version of the rules (implies --rules).
        #[arg(long)]
        rules_version: Option<i64>,
        /// Ask a running Strata (e.g. http://strata:3000) instead of opening the database.
        #[arg(long, env = "STRATA_SERVER")]
        server: Option<String>,
        /// Print the whole verdict as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also require the run's human sign-off (its project's approvals, no open change
        /// request): exit code 1 when the gates pass but it is not blessed yet.
        #[arg(long)]
        require_blessed: bool,
        /// With --require-blessed and --server: wait up to this many seconds for the sign-off,
        /// asking every 10 s (a CI pipeline that waits for a reviewer).
        #[arg(long, default_value_t = 0)]
        wait: u64,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args, Clone)]
struct AuthArgs {
    /// Team mode even before the first account exists (every request needs a sign-in).
    #[arg(long, env = "STRATA_AUTH", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    auth: bool,
    /// Cookies only over HTTPS (set it when Strata is served over TLS, e.g. behind a proxy).
    #[arg(long, env = "STRATA_SECURE_COOKIES", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    secure_cookies: bool,
    /// A session ends after this many minutes without a request.
    #[arg(long, env = "STRATA_SESSION_IDLE_MIN", default_value_t = 720)]
    session_idle_min: u64,
    /// A session ends this many hours after sign-in.
    #[arg(long, env = "STRATA_SESSION_MAX_H", default_value_t = 168)]
    session_max_h: u64,
    /// Share links need a signed-in account to open, whatever each link says.
    #[arg(long, env = "STRATA_LINKS_REQUIRE_SIGN_IN", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    links_require_sign_in: bool,
    /// The address users reach Strata at (e.g. https://strata.example.com): the OpenID
    /// provider sends them back to `<this>/auth/oidc/callback`.
    #[arg(long, env = "STRATA_PUBLIC_URL")]
    public_url: Option<String>,
    /// OpenID Connect issuer (its `/.well-known/openid-configuration` is read on first use).
    #[arg(long, env = "STRATA_OIDC_ISSUER")]
    oidc_issuer: Option<String>,
    #[arg(long, env = "STRATA_OIDC_CLIENT_ID", default_value = "strata")]
    oidc_client_id: String,
    #[arg(long, env = "STRATA_OIDC_CLIENT_SECRET", hide_env_values = true)]
    oidc_client_secret: Option<String>,
    /// The ID-token claim with the user's groups (a string or a list).
    #[arg(long, env = "STRATA_OIDC_ROLE_CLAIM", default_value = "groups")]
    oidc_role_claim: String,
    /// Group → role, comma-separated: `strata-admins=admin,ml-team=editor`.
    #[arg(long, env = "STRATA_OIDC_ROLES", default_value = "")]
    oidc_roles: String,
    /// The role of a user in none of those groups: viewer, editor, admin, or none (refused).
    #[arg(long, env = "STRATA_OIDC_DEFAULT_ROLE", default_value = "none", value_parser = ["none", "viewer", "editor", "admin"])]
    oidc_default_role: String,
    /// The sign-in button's text.
    #[arg(long, env = "STRATA_OIDC_LABEL", default_value = "Sign in with single sign-on")]
    oidc_label: String,
}

impl AuthArgs {
    fn oidc(&self, addr: SocketAddr) -> anyhow::Result<Option<strata_server::auth::oidc::OidcConfig>> {
        use strata_server::auth::oidc::{Oidc, OidcConfig};
        let Some(issuer) = self.oidc_issuer.clone().filter(|i| !i.trim().is_empty()) else { return Ok(None) };
        let public = self.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
        let c = OidcConfig {
            issuer,
            client_id: self.oidc_client_id.clone(),
            client_secret: self.oidc_client_secret.clone().filter(|s| !s.is_empty()),
            redirect_url: format!("{}/auth/oidc/callback", public.trim_end_matches('/')),
            role_claim: self.oidc_role_claim.clone(),
            roles: OidcConfig::parse_roles(&self.oidc_roles).map_err(|e| anyhow::anyhow!("STRATA_OIDC_ROLES: {e}"))?,
            default_role: strata_app::model::UserRole::parse(&self.oidc_default_role),
            label: self.oidc_label.clone(),
        };
        Oidc::new(c.clone()).map_err(anyhow::Error::msg)?;
        Ok(Some(c))
    }

    fn config(&self, addr: SocketAddr) -> anyhow::Result<strata_server::auth::AuthConfig> {
        Ok(strata_server::auth::AuthConfig {
            oidc: self.oidc(addr)?,
            forced: self.auth,
            idle: std::time::Duration::from_secs(self.session_idle_min.max(1) * 60),
            absolute: std::time::Duration::from_secs(self.session_max_h.max(1) * 3600),
            secure_cookies: self.secure_cookies,
            links_require_sign_in: self.links_require_sign_in,
        })
    }
}

#[derive(Subcommand)]
enum UsersAction {
    /// Adds an account. The password is read from standard input when it is not a terminal
    /// (e.g. `printf '%s' "$PW" | strata users add ann --role admin`); asked twice on a terminal.
    Add {
        name: String,
        #[arg(long, value_parser = ["viewer", "editor", "admin"])]
        role: String,
        /// A service account: no password, tokens only (`strata tokens create`).
        #[arg(long)]
        service: bool,
    },
    /// Lists the accounts, their roles and grants.
    List,
    /// Sets a new password (read like `add`); signs the account out everywhere.
    Passwd { name: String },
    /// Changes an account's role.
    Role {
        name: String,
        #[arg(value_parser = ["viewer", "editor", "admin"])]
        role: String,
    },
    /// Disables an account (it is signed out everywhere and its tokens stop working).
    Disable { name: String },
    Enable { name: String },
    /// Grants an account read / edit / manage on a project (`none` removes the grant).
    Grant {
        name: String,
        #[arg(long)]
        project: String,
        #[arg(value_parser = ["read", "edit", "manage", "none"])]
        level: String,
    },
}

#[derive(Subcommand)]
enum TokensAction {
    /// Creates a token and prints it (once: only its hash is stored).
    Create {
        /// The account it acts as.
        #[arg(long)]
        user: String,
        /// What it is for, e.g. "ci pipeline".
        #[arg(long)]
        name: String,
        /// read, write, validate or admin; repeatable.
        #[arg(long = "scope", required = true, value_parser = ["read", "write", "validate", "admin"])]
        scopes: Vec<String>,
        /// Days until it expires.
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// Lists tokens (never their secrets).
    List,
    /// Deletes a token by id.
    Delete { id: String },
}

/// A password from standard input (one line, when not a terminal) or typed twice on a terminal.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password(format!("{prompt}: "))?;
        let b = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(a == b, "the two passwords differ");
        Ok(a)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let pw = line.trim_end_matches(['\n', '\r']).to_string();
        anyhow::ensure!(!pw.is_empty(), "no password on standard input");
        Ok(pw)
    }
}

fn settings(common: &Common, addr: SocketAddr, cache_mb: usize, demo: bool, site_root: PathBuf) -> anyhow::Result<Settings> {
    Ok(Settings {
        addr,
        database: DatabaseTarget::resolve(common.database_url.as_deref(), &common.data_dir)?,
        data_dir: common.data_dir.clone(),
        cache_bytes: cache_mb * 1024 * 1024,
        limits: Limits {
            max_upload_bytes: common.max_upload_mb * 1024 * 1024,
            max_analysis_bytes: common.max_analysis_mb * 1024 * 1024,
            max_rows: common.max_rows,
            max_columns: common.max_columns,
            max_cells: common.max_cells,
            max_uncompressed_bytes: common.max_uncompressed_mb << 20,
            max_model_bytes: common.max_model_mb << 20,
            max_predictions: common.max_predictions,
            workers: common.workers.unwrap_or(Limits::default().workers),
            max_queue: common.max_queue,
            request_timeout: std::time::Duration::from_secs(common.request_timeout_s.max(1)),
            spark_query_timeout: std::time::Duration::from_secs(common.spark_query_timeout_s.max(1)),
            ..Limits::default()
        },
        outbound: Outbound::new(&common.outbound_allow, common.outbound_private, common.max_response_mb * 1024 * 1024).map_err(anyhow::Error::msg)?,
        secret_key: common.secret_key.clone(),
        demo,
        site_root,
    })
}

async fn open_state(s: &Settings) -> anyhow::Result<AppState> {
    let tmp = s.data_dir.join("tmp");
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let store = Store::connect(&s.database).await.with_context(|| format!("opening the database {:?}", s.database))?;
    let secrets = SecretBox::load(s.secret_key.as_deref(), &s.data_dir).context("the key for stored secrets")?;
    Ok(AppState::new(store, s.cache_bytes, s.limits.clone(), tmp).with_outbound(s.outbound.clone()).with_secrets(secrets))
}

/// Ok(false) when the command ran but its verdict is negative (a failed validation).
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Serve { addr, common, no_demo, cache_mb, site_root, allowed_hosts, auth, external_roots } => {
            let s = settings(&common, addr, cache_mb, !no_demo, site_root)?;
            tracing::info!(database = ?s.database, data_dir = %s.data_dir.display(), outbound = %s.outbound.describe(), "starting");
            // Spool files left by a crash (an upload cut by kill -9) are removed before serving.
            let removed = strata_server::service::clean_spool(&s.data_dir.join("tmp"));
            if removed > 0 {
                tracing::info!(files = removed, "removed upload spool files left by an earlier run");
            }
            let state = open_state(&s)
                .await?
                .with_allowed_hosts(allowed_hosts.clone())
                .with_auth(auth.config(s.addr)?)
                .with_external_roots(&external_roots)
                .context("an --external-root directory")?;
            let accounts = state.store.count_users().await.context("counting accounts")?;
            let sso = state.auth.oidc.is_some();
            if sso && accounts == 0 && !auth.auth {
                // Single sign-on configured: sign-in is required from the start.
                state.auth.team_on();
            }
            if accounts == 0 && !auth.auth && !sso && !s.addr.ip().is_loopback() {
                anyhow::bail!(
                    "refusing to serve on {} without sign-in: anyone on the network could upload, delete and change everything.\n\
                     Create the first admin, then start again:\n    strata users add NAME --role admin\n\
                     (or bind to 127.0.0.1 for a single-user Strata on this machine)",
                    s.addr
                );
            }
            if accounts == 0 && auth.auth {
                tracing::warn!("team mode without accounts: nobody can sign in until an admin is created with `strata users add NAME --role admin`");
            }
            tracing::info!(mode = if accounts > 0 || auth.auth || sso { "team (sign-in required)" } else { "open (loopback, no accounts)" }, "access");
            if strata_server::site::SiteGuard::new(s.addr, &allowed_hosts).accepts_any_host() {
                tracing::warn!("bound to every interface without STRATA_ALLOWED_HOSTS: any Host header is accepted; name the server to refuse DNS rebinding");
            }
            // Webhook deliveries due (including any a crash left pending) go out from here on.
            state.start_outbox();
            if s.demo {
                let n = strata_server::demo::load_if_empty(&state).await.context("loading the demo runs")?;
                if n > 0 {
                    tracing::info!(runs = n, "demo runs loaded");
                }
            }
            if !s.site_root.join("pkg").exists() {
                tracing::warn!(site_root = %s.site_root.display(), "no built site here: pages will not hydrate (build it with scripts/build.sh)");
            }
            let app = strata_server::router(state, strata_server::leptos_options(&s.site_root, s.addr));
            let listener = tokio::net::TcpListener::bind(s.addr).await.with_context(|| format!("binding {}", s.addr))?;
            tracing::info!("serving on http://{}", s.addr);
            // SIGTERM (what container runtimes and systemd send) and Ctrl-C stop accepting
            // connections, let in-flight requests finish (each is bounded by the request timeout),
            // then exit.
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown_signal()).await?;
            tracing::info!("stopped: every in-flight request finished");
            Ok(true)
        }
        Command::Ingest { file, name, label, scores, prediction, id, timestamp, weight, categorical, ignore, tags, models, delimiter, project, version, common } => {
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
                project,
                version,
                ..Default::default()
            };
            let mut attachments = Vec::new();
            for m in models {
                let content = std::fs::read(&m).with_context(|| format!("reading model {}", m.display()))?;
                let name = m.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model.onnx".into());
                attachments.push(Attachment { name, media_type: "application/onnx".into(), model: None, content });
            }
            let file_name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let progress = std::sync::Arc::new(strata_server::progress::Progress::new());
            let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| ingest_bar(progress.clone()));
            let stored = strata_server::service::jobs::scope(progress, state.ingest(&file, &file_name, spec, attachments)).await;
            if let Some((bar, task)) = bar {
                task.abort();
                bar.finish_and_clear();
            }
            let id = stored.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{id}");
            Ok(true)
        }
        Command::Register { parquet, spark, table, spark_path, format, label, scores, name, project, weight, id, timestamp, version, tags, common } => {
            let s = settings(&common, "127.0.0.1:0".parse()?, 64, false, PathBuf::new())?;
            let state = open_state(&s).await?;
            let source = match (parquet, spark) {
                // The operator's own files: any path they can read (a team-mode server still
                // reads it only under its --external-root directories). Stored absolute, so the
                // server finds it from wherever it runs.
                (Some(parquet), _) => {
                    let path = std::path::absolute(&parquet).with_context(|| format!("the path {}", parquet.display()))?;
                    strata_app::model::RunSource::Parquet(path.to_string_lossy().to_string())
                }
                (None, Some(remote)) => strata_app::model::RunSource::Spark(strata_app::model::SparkSource { remote, table, path: spark_path, format, schema: vec![] }),
                (None, None) => anyhow::bail!("give --parquet PATH, or --spark sc://… with --table or --path"),
            };
            let reg = strata_app::model::RegisterRun {
                name,
                label,
                scores: (!scores.is_empty()).then_some(scores),
                id,
                timestamp,
                weight,
                tags,
                project,
                version,
                source: Some(source),
            };
            let id = state.register_external(reg, strata_server::ingest::dataset::Access::Open).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{id}");
            Ok(true)
        }
        Command::Users { action, common } => {
            let s = settings(&common, "127.0.0.1:0".parse()?, 16, false, PathBuf::new())?;
            let state = open_state(&s).await?;
            users(&state, action).await?;
            Ok(true)
        }
        Command::Tokens { action, common } => {
            let s = settings(&common, "127.0.0.1:0".parse()?, 16, false, PathBuf::new())?;
            let state = open_state(&s).await?;
            tokens(&state, action).await?;
            Ok(true)
        }
        Command::Gates { project, file, server, common } => {
            let set: Option<GateSet> = match &file {
                Some(f) => {
                    let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
                    Some(serde_json::from_str(&text).with_context(|| format!("{}: not a gate set", f.display()))?)
                }
                None => None,
            };
            let saved: GateSetVersion = match server {
                Some(url) => {
                    let url = api_url(&url, &["api", "v1", "projects", &project, "gates"])?;
                    let client = reqwest::Client::new();
                    let req = match &set {
                        Some(set) => client.put(url.clone()).json(set),
                        None => client.get(url.clone()),
                    };
                    let req = with_token(req);
                    answer_json(req.send().await.with_context(|| format!("calling {url}"))?, &url).await?
                }
                None => {
                    let s = settings(&common, "127.0.0.1:0".parse()?, 64, false, PathBuf::new())?;
                    let state = open_state(&s).await?;
                    match set {
                        Some(set) => state.put_gates(&project, set).await,
                        None => state.gates(&project, None).await,
                    }
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                }
            };
            println!("{}", serde_json::to_string_pretty(&saved)?);
            Ok(true)
        }
        Command::Validate { project, run, gates_version, rules, rules_version, server, json, common, require_blessed, wait } => {
            let rules = (rules || rules_version.is_some()).then_some(rules_version);
            let v = match server {
                Some(url) => {
                    let mut v = validate_remote(&url, &project, &run, gates_version, rules).await?;
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
                    while require_blessed && v.passed && !v.review.as_ref().is_some_and(|r| r.blessed) && std::time::Instant::now() < deadline {
                        eprintln!("waiting for the sign-off of run {run} ({})", review_line(&v));
                        tokio::time::sleep(std::time::Duration::from_secs(10).min(deadline.saturating_duration_since(std::time::Instant::now()))).await;
                        let url = api_url(&url, &["api", "v1", "runs", &run, "validation"])?;
                        v = answer_json(with_token(reqwest::Client::new().get(url.clone())).send().await.with_context(|| format!("calling {url}"))?, &url).await?;
                    }
                    v
                }
                None => {
                    let s = settings(&common, "127.0.0.1:0".parse()?, 256, false, PathBuf::new())?;
                    let state = open_state(&s).await?;
                    let v = state.validate_with(&project, &run, gates_version, rules).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    // Alerts go to the webhook before the process exits.
                    state.wait_for_deliveries().await;
                    v
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", verdict_table(&v));
            }
            if require_blessed {
                let blessed = v.review.as_ref().is_some_and(|r| r.blessed);
                return Ok(v.passed && blessed);
            }
            Ok(v.passed)
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: finishing in-flight requests"),
        _ = term => tracing::info!("SIGTERM: finishing in-flight requests"),
    }
}

/// Adds `Authorization: Bearer $STRATA_TOKEN` when the variable is set (a server in team mode).
fn with_token(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match std::env::var("STRATA_TOKEN") {
        Ok(t) if !t.trim().is_empty() => req.bearer_auth(t.trim()),
        _ => req,
    }
}

async fn users(state: &AppState, action: UsersAction) -> anyhow::Result<()> {
    use strata_app::model::{Grant, NewUser, UserPatch, UserRole};
    let role = |r: &str| UserRole::parse(r).ok_or_else(|| anyhow::anyhow!("'{r}' is not a role"));
    let fail = |e: strata_server::service::ServiceError| anyhow::anyhow!("{e}");
    match action {
        UsersAction::Add { name, role: r, service } => {
            let password = if service { None } else { Some(read_password(&format!("Password for {name}"))?) };
            let u = state.create_user(NewUser { name, role: role(&r)?, password, service }).await.map_err(fail)?;
            println!("added {} ({})", u.name, u.role.as_str());
        }
        UsersAction::List => {
            for u in state.store.list_users().await? {
                let grants = u.grants.iter().map(|(p, g)| format!("{p}:{}", g.as_str())).collect::<Vec<_>>().join(",");
                println!("{:<24} {:<7} {:<8} {}{}", u.name, u.role.as_str(), u.kind, if u.disabled { "disabled " } else { "" }, grants);
            }
        }
        UsersAction::Passwd { name } => {
            let password = read_password(&format!("New password for {name}"))?;
            state.update_user(&name, UserPatch { password: Some(password), ..Default::default() }).await.map_err(fail)?;
            println!("password changed; {name} is signed out everywhere");
        }
        UsersAction::Role { name, role: r } => {
            let u = state.update_user(&name, UserPatch { role: Some(role(&r)?), ..Default::default() }).await.map_err(fail)?;
            println!("{} is now {}", u.name, u.role.as_str());
        }
        UsersAction::Disable { name } => {
            state.update_user(&name, UserPatch { disabled: Some(true), ..Default::default() }).await.map_err(fail)?;
            println!("{name} is disabled and signed out everywhere");
        }
        UsersAction::Enable { name } => {
            state.update_user(&name, UserPatch { disabled: Some(false), ..Default::default() }).await.map_err(fail)?;
            println!("{name} is enabled");
        }
        UsersAction::Grant { name, project, level } => {
            let a = state.store.account_by_name(&name).await?.ok_or_else(|| anyhow::anyhow!("no account named '{name}'"))?;
            let grant = if level == "none" { None } else { Some(Grant::parse(&level).ok_or_else(|| anyhow::anyhow!("'{level}' is not a grant"))?) };
            state.store.set_grant(&project, &a.id, grant).await?;
            println!("{name} on {project}: {level}");
        }
    }
    Ok(())
}

async fn tokens(state: &AppState, action: TokensAction) -> anyhow::Result<()> {
    use strata_app::model::{NewToken, Scope};
    match action {
        TokensAction::Create { user, name, scopes, days } => {
            let a = state.store.account_by_name(&user).await?.ok_or_else(|| anyhow::anyhow!("no account named '{user}'"))?;
            let scopes = scopes.iter().filter_map(|s| Scope::parse(s)).collect();
            let t = state.create_token(&a.id, &a.name, NewToken { name, scopes, expires_in_days: Some(days) }).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!("token {} for {} (expires {}); shown once:", t.info.id, t.info.user, t.info.expires_at.as_deref().unwrap_or("never"));
            println!("{}", t.token);
        }
        TokensAction::List => {
            for t in state.store.list_tokens(None).await? {
                let scopes = t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
                println!("{}  {:<16} {:<24} {:<22} expires {}", t.id, t.user, t.name, scopes, t.expires_at.as_deref().unwrap_or("never"));
            }
        }
        TokensAction::Delete { id } => {
            anyhow::ensure!(state.store.delete_token(&id, None).await?, "no token '{id}'");
            println!("deleted {id}");
        }
    }
    Ok(())
}

/// `{server}/seg/ments`, each segment percent-encoded.
fn api_url(server: &str, segments: &[&str]) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(server).with_context(|| format!("--server '{server}' is not a URL"))?;
    url.path_segments_mut().map_err(|_| anyhow::anyhow!("--server '{server}' cannot take a path"))?.pop_if_empty().extend(segments);
    Ok(url)
}

/// The JSON body of a successful answer, or an error with the server's message.
async fn answer_json<T: serde::de::DeserializeOwned>(answer: reqwest::Response, url: &reqwest::Url) -> anyhow::Result<T> {
    let status = answer.status();
    let body = answer.text().await?;
    if !status.is_success() {
        let msg = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string)).unwrap_or(body);
        anyhow::bail!("{status}: {msg}");
    }
    serde_json::from_str(&body).with_context(|| format!("{url} answered something unexpected"))
}

/// `POST {server}/api/v1/projects/{p}/runs/{id}/validate`.
async fn validate_remote(server: &str, project: &str, run: &str, gates_version: Option<i64>, rules: Option<Option<i64>>) -> anyhow::Result<Validation> {
    let mut url = api_url(server, &["api", "v1", "projects", project, "runs", run, "validate"])?;
    if let Some(v) = gates_version {
        url.query_pairs_mut().append_pair("gates_version", &v.to_string());
    }
    match rules {
        Some(Some(v)) => {
            url.query_pairs_mut().append_pair("rules_version", &v.to_string());
        }
        Some(None) => {
            url.query_pairs_mut().append_pair("rules", "true");
        }
        None => {}
    }
    let answer = with_token(reqwest::Client::new().post(url.clone())).send().await.with_context(|| format!("calling {url}"))?;
    answer_json(answer, &url).await
}

/// The sign-off in one line: `1 of 2 approvals (ann); changes requested by bob; not blessed`.
fn review_line(v: &Validation) -> String {
    let Some(r) = &v.review else { return "unknown".into() };
    let mut s = format!("{} of {} approval(s)", r.approved_by.len(), r.required_approvals.max(1));
    if !r.approved_by.is_empty() {
        s.push_str(&format!(" ({})", r.approved_by.join(", ")));
    }
    if !r.changes_requested_by.is_empty() {
        s.push_str(&format!("; changes requested by {}", r.changes_requested_by.join(", ")));
    }
    s.push_str(if r.blessed { "; blessed" } else { "; not blessed" });
    s
}

/// The verdict for a terminal: each gate, each slice that failed or was judged, and a last line.
fn verdict_table(v: &Validation) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {} · project {} · gates v{}{} · model {} · baseline {}",
        v.run_id,
        v.project,
        v.gates_version,
        v.rules_version.map(|r| format!(" · rules v{r}")).unwrap_or_default(),
        v.model,
        v.baseline_run.as_deref().unwrap_or("none")
    );
    let word = |x: Verdict| match x {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::Skipped => "skip",
    };
    for o in &v.outcomes {
        let _ = writeln!(out, "{:4}  {}", word(o.verdict), o.rule);
        for s in &o.slices {
            let value = s.value.map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into());
            let base = s.baseline.map(|x| format!(" (baseline {x:.4})")).unwrap_or_default();
            let _ = writeln!(out, "        {:4}  {:<28} {value}{base}  {}", word(s.verdict), s.slice, s.reason);
        }
    }
    for n in &v.notes {
        let _ = writeln!(out, "note: {n}");
    }
    if !v.drifted_features.is_empty() {
        let _ = writeln!(out, "drift: {}", v.drifted_features.join(", "));
    }
    if v.review.is_some() {
        let _ = writeln!(out, "review: {}", review_line(v));
    }
    let _ = writeln!(out, "{}", if v.passed { "PASSED".to_string() } else { format!("FAILED: {} failing slice(s)", v.failures.len()) });
    out
}

/// A progress bar on stderr (a terminal) following an ingest: bytes read over both passes, rows,
/// the time left. Updated a few times a second until the caller aborts the task.
fn ingest_bar(progress: std::sync::Arc<strata_server::progress::Progress>) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg:>10} [{bar:30}] {percent:>3}%  {prefix} rows  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let b = bar.clone();
    let task = tokio::spawn(async move {
        loop {
            let s = progress.snapshot();
            b.set_length(s.total.max(1));
            b.set_position(s.done);
            b.set_prefix(s.rows.to_string());
            b.set_message(s.stage);
            tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        }
    });
    (bar, task)
}
