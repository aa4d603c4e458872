//! The server: loads plugins, starts the actors, serves the HTTP API until shut down.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::actors::supervisor::{self, BreakerPolicy, ListPlugins, PluginSupervisor};
use crate::config::{LlmArgs, PluginArgs, ServeArgs};
use crate::llm::scripted::{self, Script};
use crate::llm::{LlmClient, LlmSettings};
use crate::plugins::capabilities::LlmBackend;
use crate::plugins::{CompileCache, LoadError, Package, PluginHost, Services};

/// Builds the plugin host from `args` and installs every bundled and installed plugin. A
/// plugin that fails to load is logged and skipped: one bad package must not keep the rest of
/// the platform down.
pub fn load_plugins(
    args: &PluginArgs,
    llm: Option<Arc<dyn LlmBackend>>,
) -> anyhow::Result<Arc<PluginHost>> {
    let operator = args.operator()?;
    let services = Services {
        config: Arc::new(operator.plugin_configs()),
        llm,
        ..Services::default()
    };
    let host = Arc::new(
        PluginHost::new(args.limits(), CompileCache::at(args.cache_dir()), services)
            .map_err(|e| anyhow::anyhow!("cannot start the plugin engine: {e:#}"))?,
    );
    for pkg in args.bundled_packages() {
        let loaded = Package::open(&pkg)
            .map_err(LoadError::from)
            .and_then(|package| {
                // Grants are keyed by the plugin's name, not its directory's.
                let grants = operator.grants(&package.manifest.plugin.name.0);
                host.load(&package, &grants)
            });
        match loaded {
            Ok(plugin) => {
                host.install(plugin);
            }
            Err(e) => {
                tracing::error!(package = %pkg.display(), error = %e, "could not load bundled plugin")
            }
        }
    }
    for pkg in supervisor::installed_packages(&args.install_dir()) {
        if let Err(e) = supervisor::install_if_newer(&host, &pkg) {
            tracing::error!(package = %pkg.display(), error = %e, "could not load installed plugin");
        }
    }
    Ok(host)
}

#[derive(Clone)]
struct AppState {
    host: Arc<PluginHost>,
    supervisor: actix::Addr<PluginSupervisor>,
    llm: LlmInfo,
}

/// Which model the server talks to, for `/v1/version`.
#[derive(Debug, Clone, serde::Serialize)]
struct LlmInfo {
    base_url: String,
    model: String,
    /// True when no model is configured and the scripted test model answers instead.
    scripted: bool,
}

/// The configured model client or, when none is configured, the scripted test model started
/// on a loopback port of its own.
async fn start_llm(args: &LlmArgs) -> anyhow::Result<(Arc<LlmClient>, LlmInfo)> {
    let (base_url, model, scripted) = match &args.llm_base_url {
        Some(url) => (url.clone(), args.llm_model.clone(), false),
        None => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}/v1", listener.local_addr()?);
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, scripted::router(Script::default())).await {
                    tracing::error!(error = %e, "scripted model stopped");
                }
            });
            tracing::warn!(
                "no language model configured (PENPAL_LLM_BASE_URL): tutors answer with the \
                 scripted test model at {url}, which is not a real model"
            );
            (url, scripted::MODEL.to_string(), true)
        }
    };
    let mut settings = LlmSettings::new(base_url.clone(), model.clone());
    settings.api_key = args.llm_api_key.as_ref().map(|k| k.0.clone());
    let client = Arc::new(LlmClient::new(settings)?);
    Ok((
        client,
        LlmInfo {
            base_url,
            model,
            scripted,
        },
    ))
}

/// Serves on `listener` until `shutdown` resolves. Must run inside an actix system.
pub async fn run(
    listener: TcpListener,
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (llm, llm_info) = start_llm(&args.llm).await?;
    let host = load_plugins(&args.plugins, Some(llm as Arc<dyn LlmBackend>))?;
    let supervisor = PluginSupervisor::launch(
        host.clone(),
        BreakerPolicy::default(),
        Some(args.plugins.install_dir()),
    );
    let state = AppState {
        host,
        supervisor,
        llm: llm_info,
    };
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/v1/version", get(version))
        .route("/v1/plugins", get(plugins))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": {"code": "not_found", "message": "no such route"}})),
            )
        })
        .with_state(state);
    tracing::info!(addr = %listener.local_addr()?, "penpal listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn readyz(State(state): State<AppState>) -> Response {
    let tutors = state
        .host
        .list()
        .iter()
        .filter(|p| p.manifest.plugin.kind == crate::plugins::Kind::Tutor)
        .count();
    if tutors == 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": "no tutor plugin is loaded"})),
        )
            .into_response();
    }
    Json(json!({"status": "ready", "tutors": tutors})).into_response()
}

async fn version(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "llm": state.llm,
        "wit": crate::plugins::manifest::SUPPORTED_WIT.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
    }))
}

async fn plugins(State(state): State<AppState>) -> Response {
    match state.supervisor.send(ListPlugins).await {
        Ok(list) => Json(json!({ "plugins": list })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "plugin supervisor unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": {"code": "unavailable", "message": "plugin supervisor is not running"}})),
            )
                .into_response()
        }
    }
}
