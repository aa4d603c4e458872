//! Configuration: command-line flags, each with a `PENPAL_…` environment variable (all listed in
//! `.env.example`), plus an optional TOML file for what does not fit a flag — per-plugin
//! grants, settings and secrets.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::plugins::{Capabilities, Limits, PluginConfig, Secret};

/// Settings shared by every command that loads plugins.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginArgs {
    /// Where penpal keeps its data: installed plugins, the compile cache.
    #[arg(long, env = "PENPAL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Directories of bundled plugins (each a package, or a folder of packages), comma-separated.
    #[arg(long = "plugin-dir", env = "PENPAL_PLUGIN_DIRS", value_delimiter = ',')]
    pub plugin_dirs: Vec<PathBuf>,

    /// A TOML file with per-plugin grants, settings and secrets.
    #[arg(long, env = "PENPAL_CONFIG")]
    pub config: Option<PathBuf>,

    /// Memory cap of one plugin instance, in MiB.
    #[arg(long, env = "PENPAL_PLUGIN_MEMORY_MIB", default_value_t = 64)]
    pub plugin_memory_mib: usize,

    /// CPU budget of one plugin call, in milliseconds.
    #[arg(long, env = "PENPAL_PLUGIN_CPU_MS", default_value_t = 200)]
    pub plugin_cpu_ms: u64,

    /// Wall-clock timeout of one plugin call, in milliseconds.
    #[arg(long, env = "PENPAL_PLUGIN_TIMEOUT_MS", default_value_t = 5000)]
    pub plugin_timeout_ms: u64,

    /// Largest result of one plugin call, in KiB.
    #[arg(long, env = "PENPAL_PLUGIN_OUTPUT_KIB", default_value_t = 1024)]
    pub plugin_output_kib: usize,

    /// Special-purpose networks plugins may reach over HTTP despite being loopback, private or
    /// link-local, comma-separated CIDRs (`10.20.0.0/16`); the same rule holds for the LMS
    /// endpoints school admins register (plain HTTP only to these). Empty (the default): only
    /// public addresses.
    #[arg(long = "plugin-allow-network", env = "PENPAL_PLUGIN_ALLOW_NETWORKS",
          value_delimiter = ',', value_parser = parse_network)]
    pub plugin_allow_networks: Vec<ipnet::IpNet>,
}

impl PluginArgs {
    /// The call limits these settings describe.
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.plugin_memory_mib << 20,
            cpu: Duration::from_millis(self.plugin_cpu_ms),
            wall: Duration::from_millis(self.plugin_timeout_ms),
            output_bytes: self.plugin_output_kib << 10,
        }
    }

    /// Where `penpal plugin install` puts packages.
    pub fn install_dir(&self) -> PathBuf {
        self.data_dir.join("plugins")
    }

    /// Where compiled components are cached.
    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache")
    }

    /// The operator file, or an empty one.
    pub fn operator(&self) -> anyhow::Result<OperatorFile> {
        match &self.config {
            Some(path) => OperatorFile::load(path),
            None => Ok(OperatorFile::default()),
        }
    }

    /// Every bundled package directory: each `--plugin-dir` that is a package, and each package
    /// directly inside one that is not.
    pub fn bundled_packages(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in &self.plugin_dirs {
            if dir.join(crate::plugins::manifest::MANIFEST_FILE).is_file() {
                out.push(dir.clone());
            } else if let Ok(entries) = std::fs::read_dir(dir) {
                let mut pkgs: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.join(crate::plugins::manifest::MANIFEST_FILE).is_file())
                    .collect();
                pkgs.sort();
                out.extend(pkgs);
            } else {
                tracing::warn!(dir = %dir.display(), "plugin directory not found");
            }
        }
        out
    }
}

/// The operator's TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorFile {
    /// Per-plugin sections, by plugin name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSection>,
    /// `[notify]`: where messages go out.
    #[serde(default)]
    pub notify: NotifySection,
    /// `[billing]`: plans and prices. Without it billing is off: every account may do
    /// everything.
    #[serde(default)]
    pub billing: Option<BillingSection>,
    /// `[marketplace]`: what installs from the registry do.
    #[serde(default)]
    pub marketplace: MarketplaceSection,
}

/// `[marketplace]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketplaceSection {
    /// Other registries (penpal servers) admins may install from, by address: packages are
    /// downloaded from them and their signatures checked here, against the publisher's key
    /// there, pinned on first install.
    #[serde(default)]
    pub registries: Vec<String>,
    /// What becomes of an installed version once its publisher revokes the key that signed
    /// it: `flag` (the default: it keeps running, shown as signed by a revoked key) or
    /// `disable` (it stops until an admin installs another version).
    #[serde(default)]
    pub on_revoked: OnRevoked,
}

/// See [`MarketplaceSection::on_revoked`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRevoked {
    /// Keep running, flagged.
    #[default]
    Flag,
    /// Stop running.
    Disable,
}

/// `[billing]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSection {
    /// The payment-provider plugin learners pay through (such as `stripe`); none: plans are
    /// granted by operators only.
    pub provider: Option<String>,
    /// `consumers` (the default: prices include VAT, shown with its part) or `businesses`
    /// (prices exclude VAT, shown with what is added).
    #[serde(default)]
    pub sells_to: SellsTo,
    /// `[billing.plans.ID]`; none: the built-in free, premium-monthly and premium-yearly.
    #[serde(default)]
    pub plans: BTreeMap<String, PlanSection>,
}

/// Whom the operator sells to, which decides whether price books include VAT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SellsTo {
    /// People: prices include VAT, shown with its part (EU law for consumer prices).
    #[default]
    Consumers,
    /// Companies: prices exclude VAT, shown with what is added.
    Businesses,
}

/// `[billing.plans.ID]`: a plan. The one without `interval` is the free plan.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSection {
    /// What learners see, by language: `{ en = "Premium", fr = "Premium" }`.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// `month` or `year`; none for the free plan.
    pub interval: Option<String>,
    /// Price per period by ISO 4217 currency, in minor units: `{ EUR = 2000, USD = 2200 }`.
    #[serde(default)]
    pub prices: BTreeMap<String, i64>,
    /// Free days before the first charge.
    pub trial_days: Option<u32>,
    /// Tutor turns a day (UTC); none for no limit.
    pub turns_per_day: Option<u32>,
    /// Personalities it may use; none for all.
    pub personalities: Option<Vec<String>>,
    /// Modes it may use (`tutor`, `conversation`, `role-play`); none for all.
    pub modes: Option<Vec<String>>,
}

/// `[notify]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// `[notify.routes]`: category (`security`, `account`, `progress`, `school`, `marketing`)
    /// → channels (`email`, or notifier plugins by name). A category left out goes by email.
    #[serde(default)]
    pub routes: BTreeMap<String, Vec<String>>,
}

/// `[plugins.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// What the operator grants the plugin (intersected with what it requests).
    #[serde(default)]
    pub grant: Capabilities,
    /// Settings the plugin can read.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Secret values; `env:NAME` reads the environment variable NAME.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

impl OperatorFile {
    /// Reads the file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<OperatorFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// What the operator grants `plugin`.
    pub fn grants(&self, plugin: &str) -> Capabilities {
        self.plugins
            .get(plugin)
            .map(|s| s.grant.clone())
            .unwrap_or_default()
    }

    /// Settings and resolved secrets per plugin. A secret naming an unset variable is left out
    /// (the plugin sees `not-found`), with a warning that names the variable, not the value.
    pub fn plugin_configs(&self) -> HashMap<String, PluginConfig> {
        self.plugins
            .iter()
            .map(|(name, section)| {
                let secrets = section
                    .secrets
                    .iter()
                    .filter_map(|(key, value)| {
                        let resolved = match value.strip_prefix("env:") {
                            Some(var) => match std::env::var(var) {
                                Ok(v) => v,
                                Err(_) => {
                                    tracing::warn!(plugin = %name, secret = %key, variable = var, "secret variable is not set");
                                    return None;
                                }
                            },
                            None => value.clone(),
                        };
                        Some((key.clone(), Secret::new(resolved)))
                    })
                    .collect();
                (
                    name.clone(),
                    PluginConfig {
                        settings: section.settings.clone(),
                        secrets,
                    },
                )
            })
            .collect()
    }
}

/// Which language model to use.
#[derive(Debug, Clone, clap::Args)]
pub struct LlmArgs {
    /// Base URL of an OpenAI-compatible API (OpenAI, Ollama, vLLM, llama.cpp…), such as
    /// `http://127.0.0.1:11434/v1`. Unset: penpal runs its scripted test model — not a real
    /// model — and says so.
    #[arg(long, env = "PENPAL_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,

    /// API key for that endpoint, if it needs one. Never logged.
    #[arg(long, env = "PENPAL_LLM_API_KEY", hide_env_values = true)]
    pub llm_api_key: Option<Secret>,

    /// The model to ask when a personality names none.
    #[arg(long, env = "PENPAL_LLM_MODEL", default_value = "gpt-4o-mini")]
    pub llm_model: String,

    /// Longest wait for the first piece of an answer, in milliseconds.
    #[arg(long, env = "PENPAL_LLM_TIMEOUT_MS", default_value_t = 30_000)]
    pub llm_timeout_ms: u64,

    /// Retries of a request that failed before its first piece.
    #[arg(long, env = "PENPAL_LLM_RETRIES", default_value_t = 2)]
    pub llm_retries: u32,
}

/// Which database, shared by `penpal serve` and the commands that work on it directly
/// (`penpal admin …`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DatabaseArgs {
    /// The database: `surrealkv://DIR` (embedded, the default: `DATA_DIR/db`), `mem://`
    /// (nothing kept), or `ws://HOST:PORT` for a SurrealDB server.
    #[arg(long, env = "PENPAL_DATABASE")]
    pub database: Option<String>,

    /// User for a SurrealDB server (root credentials).
    #[arg(long, env = "PENPAL_DATABASE_USER")]
    pub database_user: Option<String>,

    /// Password for a SurrealDB server. Never logged.
    #[arg(long, env = "PENPAL_DATABASE_PASSWORD", hide_env_values = true)]
    pub database_password: Option<Secret>,
}

impl DatabaseArgs {
    /// The database URL, defaulting to an embedded store in `data_dir`.
    pub fn url(&self, data_dir: &Path) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("surrealkv://{}", data_dir.join("db").display()))
    }

    /// Opens the database (applying any pending migration).
    pub async fn open(&self, data_dir: &Path) -> anyhow::Result<crate::store::Db> {
        let url = self.url(data_dir);
        let credentials = match (&self.database_user, &self.database_password) {
            (Some(u), Some(p)) => Some((u.as_str(), p.expose())),
            _ => None,
        };
        crate::store::Db::connect(&url, credentials)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database at {url}: {e}"))
    }
}

/// The database for `penpal admin …`: where the data lives, and which database.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// Where penpal keeps its data (the embedded database is `DATA_DIR/db`).
    #[arg(long, env = "PENPAL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Which database.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

impl DbArgs {
    /// Opens the database, or says what to do.
    pub async fn open(&self) -> anyhow::Result<crate::store::Db> {
        self.db.open(&self.data_dir).await.map_err(|e| {
            anyhow::anyhow!(
                "{e}. The embedded database opens in one process at a time: stop `penpal \
                 serve` first, or pass --database ws://… for a SurrealDB server"
            )
        })
    }
}

/// Settings of `penpal serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PENPAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address to serve Prometheus metrics on (`GET /metrics`), or `off`. Keep it off the
    /// public network: the figures describe the whole server.
    #[arg(long, env = "PENPAL_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    pub metrics_listen: MetricsListen,

    /// The language model.
    #[command(flatten)]
    pub llm: LlmArgs,

    /// Plugin settings.
    #[command(flatten)]
    pub plugins: PluginArgs,

    /// Database, accounts and API settings.
    #[command(flatten)]
    pub app: AppArgs,

    /// Email and the outbox.
    #[command(flatten)]
    pub mail: MailArgs,
}

const DEFAULT_MAIL_FROM: &str = "Penpal <no-reply@penpal.localhost>";

impl Default for MailArgs {
    fn default() -> Self {
        MailArgs {
            smtp_url: None,
            mail_from: DEFAULT_MAIL_FROM.into(),
            public_url: None,
            outbox_retry_ms: 5000,
            outbox_attempts: 8,
            outbox_lease_secs: 120,
            smtp_timeout_secs: 30,
            schedule_secs: 300,
        }
    }
}

/// Email and outbox settings of `penpal serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct MailArgs {
    /// The SMTP server, in lettre's URL form: `smtp://127.0.0.1:2525` (a plain loopback relay),
    /// `smtp://user:password@host:587?tls=required` (STARTTLS) or `smtps://user:password@host`
    /// (implicit TLS). Unset, email waits in the outbox.
    #[arg(long, env = "PENPAL_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<crate::plugins::Secret>,

    /// The sender of penpal's mail.
    #[arg(long, env = "PENPAL_MAIL_FROM", default_value = DEFAULT_MAIL_FROM)]
    pub mail_from: String,

    /// The address learners reach penpal at, for links in mail (`https://penpal.example.com`).
    /// Defaults to `http://` and the listen address.
    #[arg(long, env = "PENPAL_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The first retry's delay of a message that could not be delivered, in milliseconds; each
    /// next one doubles (up to an hour).
    #[arg(long, env = "PENPAL_OUTBOX_RETRY_MS", default_value_t = 5000)]
    pub outbox_retry_ms: u64,

    /// Attempts before a message is given up (and shown to operators as failed).
    #[arg(long, env = "PENPAL_OUTBOX_ATTEMPTS", default_value_t = 8)]
    pub outbox_attempts: u32,

    /// How long a node holds a message it is delivering, in seconds: if the node dies, another
    /// takes the message after this. Keep it above the SMTP timeout (`PENPAL_SMTP_TIMEOUT_SECS`).
    #[arg(long, env = "PENPAL_OUTBOX_LEASE_SECS", default_value_t = 120)]
    pub outbox_lease_secs: u64,
    /// How long one SMTP command may take, in seconds, before the attempt counts as a
    /// transient failure (a server that stalls or drops the connection mid-message).
    #[arg(long, env = "PENPAL_SMTP_TIMEOUT_SECS", default_value_t = 30)]
    pub smtp_timeout_secs: u64,
    /// How often digests and streak reminders due at learners' local hour are looked for,
    /// in seconds.
    #[arg(long, env = "PENPAL_SCHEDULE_SECS", default_value_t = 300)]
    pub schedule_secs: u64,
}

/// Parses a network: a CIDR (`10.0.0.0/8`) or a single address (trusted proxies, networks
/// plugins may reach).
pub fn parse_network(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{s}` is not an address or CIDR such as 10.0.0.0/8 or ::1"))
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListen {
    /// Not served (the recorder still counts).
    Off,
    /// On this address.
    At(SocketAddr),
}

impl std::str::FromStr for MetricsListen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" | "none" | "" => Ok(MetricsListen::Off),
            addr => addr.parse().map(MetricsListen::At).map_err(|_| {
                format!("`{addr}` is not an address such as 127.0.0.1:9464 (or `off`)")
            }),
        }
    }
}

/// Database, accounts and API settings of `penpal serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct AppArgs {
    /// Which database.
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// The key signing access tokens (at least 32 bytes). Unset: a random key is made once
    /// and kept in `DATA_DIR/jwt.key`. Every node behind a load balancer needs the same one.
    #[arg(long, env = "PENPAL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// Lifetime of an access token, in minutes.
    #[arg(long, env = "PENPAL_ACCESS_TOKEN_MINUTES", default_value_t = 10)]
    pub access_token_minutes: u64,

    /// Lifetime of a refresh token, in days.
    #[arg(long, env = "PENPAL_REFRESH_TOKEN_DAYS", default_value_t = 30)]
    pub refresh_token_days: u64,

    /// Origins allowed to call the API from a browser, comma-separated (`*` for any).
    #[arg(long, env = "PENPAL_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Largest request body, in KiB.
    #[arg(long, env = "PENPAL_MAX_BODY_KIB", default_value_t = 64)]
    pub max_body_kib: usize,

    /// Free demo turns per client per day.
    #[arg(long, env = "PENPAL_DEMO_TURNS_PER_DAY", default_value_t = 10)]
    pub demo_turns_per_day: u32,

    /// Token budget of a conversation's verbatim window; older turns are summarised.
    #[arg(long, env = "PENPAL_CONTEXT_TOKENS", default_value_t = 1500)]
    pub context_tokens: usize,

    /// Reverse proxies whose `X-Forwarded-For` is believed, comma-separated CIDRs or addresses
    /// (`10.0.0.0/8,::1`). The client is the rightmost address that is not one of them. Empty:
    /// the header is ignored and the peer is the client.
    #[arg(long = "trusted-proxy", env = "PENPAL_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Mark session cookies `Secure`, so browsers send them over HTTPS only. Turn off
    /// (`false`) only to use the web app over plain http on a development machine.
    #[arg(long, env = "PENPAL_SECURE_COOKIES", default_value_t = true, action = clap::ArgAction::Set)]
    pub secure_cookies: bool,

    /// New accounts one client (an IPv4 address or an IPv6 /64) may create per hour.
    #[arg(long, env = "PENPAL_SIGNUPS_PER_HOUR", default_value_t = 5)]
    pub signups_per_hour: u32,

    /// Free demo turns the whole server gives per UTC day.
    #[arg(long, env = "PENPAL_DEMO_BUDGET_PER_DAY", default_value_t = 1000)]
    pub demo_budget_per_day: u32,

    /// Seconds a client has to finish a request head once it starts one.
    #[arg(long, env = "PENPAL_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds a connection may sit silent with no request in progress (kept-alive, or
    /// opened and never used) before it is closed.
    #[arg(long, env = "PENPAL_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Seconds a request body may stall between chunks before the request fails.
    #[arg(long, env = "PENPAL_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Most connections (WebSockets included) open at once; past it, new ones wait.
    #[arg(long, env = "PENPAL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Price of a million prompt tokens, in USD, for cost accounting.
    #[arg(long, env = "PENPAL_LLM_PROMPT_PRICE", default_value_t = 0.0)]
    pub llm_prompt_price: f64,

    /// Price of a million completion tokens, in USD.
    #[arg(long, env = "PENPAL_LLM_COMPLETION_PRICE", default_value_t = 0.0)]
    pub llm_completion_price: f64,
}

impl Default for AppArgs {
    fn default() -> Self {
        AppArgs {
            db: DatabaseArgs::default(),
            jwt_secret: None,
            access_token_minutes: 10,
            refresh_token_days: 30,
            cors_origins: Vec::new(),
            max_body_kib: 64,
            demo_turns_per_day: 10,
            context_tokens: 1500,
            trusted_proxies: Vec::new(),
            secure_cookies: true,
            signups_per_hour: 5,
            demo_budget_per_day: 1000,
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            body_timeout_secs: 30,
            max_connections: 10_000,
            llm_prompt_price: 0.0,
            llm_completion_price: 0.0,
        }
    }
}

impl AppArgs {
    /// The signing key: configured, or kept in `data_dir/jwt.key` (made on first start).
    pub fn jwt_key(&self, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
        if let Some(s) = &self.jwt_secret {
            if s.expose().len() < 32 {
                anyhow::bail!("PENPAL_JWT_SECRET is too short: use at least 32 random bytes");
            }
            return Ok(s.expose().as_bytes().to_vec());
        }
        let path = data_dir.join("jwt.key");
        if let Ok(key) = std::fs::read(&path)
            && key.len() >= 32
        {
            return Ok(key);
        }
        std::fs::create_dir_all(data_dir)?;
        let key: [u8; 32] = rand::random();
        crate::plugins::cache::write_private(&path, &key)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        Ok(key.to_vec())
    }
}
