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
                        Some((key.clone(), Secret(resolved)))
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
}

/// Settings of `penpal serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PENPAL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The language model.
    #[command(flatten)]
    pub llm: LlmArgs,

    /// Plugin settings.
    #[command(flatten)]
    pub plugins: PluginArgs,
}
