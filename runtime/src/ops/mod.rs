//! Operations: liveness, readiness (database and plugins), version and build information —
//! public — and, for operators only, the model and database in use and the plugin list;
//! [`metrics`] and [`telemetry`] own the process's metrics and traces.

pub mod metrics;
pub mod telemetry;

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::actors::supervisor::{ListPlugins, PluginSupervisor};
use crate::auth::{Gate, Keys, Operator};
use crate::http::{ApiError, ApiResult, Path, Query};
use crate::notify::outbox::{self as mail_outbox, OutboxRow};
use crate::plugins::{Kind, PluginHost};
use crate::store::Db;

/// What the ops routes use.
#[derive(Clone)]
pub struct OpsState {
    /// The database, pinged for readiness.
    pub db: Db,
    /// Token keys, to check operators.
    pub keys: Arc<Keys>,
    /// The plugin host, for loaded and failed plugins.
    pub host: Arc<PluginHost>,
    /// The plugin supervisor.
    pub supervisor: actix::Addr<PluginSupervisor>,
    /// Which model, for the operator's status.
    pub llm_info: LlmInfo,
    /// Wakes the outbox's worker (after a retry).
    pub outbox: Arc<tokio::sync::Notify>,
}

impl FromRef<OpsState> for Gate {
    fn from_ref(s: &OpsState) -> Gate {
        Gate {
            db: s.db.clone(),
            keys: s.keys.clone(),
        }
    }
}

/// Which model the server talks to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LlmInfo {
    /// Base URL of the OpenAI-compatible API.
    pub base_url: String,
    /// The default model.
    pub model: String,
    /// True when no model is configured and the scripted test model answers instead.
    pub scripted: bool,
}

/// The ops routes.
pub fn router(state: OpsState) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(version))
        .routes(routes!(status))
        .routes(routes!(plugins))
        .routes(routes!(outbox))
        .routes(routes!(retry_message))
        .with_state(state)
}

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "the process is up")))]
async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "the database answers and a tutor is loaded"), (status = 503, description = "not ready, with the reason")))]
async fn readyz(State(app): State<OpsState>) -> Response {
    let database = app.db.ping().await;
    let tutors = app
        .host
        .list()
        .iter()
        .filter(|p| p.manifest.plugin.kind == Kind::Tutor)
        .count();
    let body = json!({
        "status": if database && tutors > 0 { "ready" } else { "not ready" },
        "database": if database { "ok" } else { "unreachable" },
        "tutors": tutors,
        "reason": if !database { Some("the database does not answer") } else if tutors == 0 { Some("no tutor plugin is loaded") } else { None },
    });
    let status = if database && tutors > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

#[utoipa::path(get, path = "/v1/version", tag = "ops", responses((status = 200, description = "version, commit, build time and the plugin contract versions")))]
async fn version() -> axum::Json<serde_json::Value> {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("PENPAL_GIT_COMMIT"),
        "build_time": crate::store::rfc3339(env!("PENPAL_BUILD_UNIX").parse::<i64>().unwrap_or(0) * 1000),
        "wit": crate::plugins::WitVersion::ALL.iter().map(|v| v.provided().to_string()).collect::<Vec<_>>(),
    }))
}

#[utoipa::path(get, path = "/v1/admin/status", tag = "ops",
    responses((status = 200, description = "the model and database in use"),
        (status = 401, description = "not signed in"), (status = 403, description = "not an operator")),
    security(("bearer" = [])))]
async fn status(State(app): State<OpsState>, _: Operator) -> axum::Json<serde_json::Value> {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "llm": app.llm_info,
        "database": {"kind": app.db.kind(), "url": app.db.url()},
    }))
}

#[utoipa::path(get, path = "/v1/plugins", tag = "ops",
    responses((status = 200, description = "every plugin with its grants, counters and breaker state"),
        (status = 401, description = "not signed in"), (status = 403, description = "not an operator")),
    security(("bearer" = [])))]
async fn plugins(
    State(app): State<OpsState>,
    _: Operator,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let list = app.supervisor.send(ListPlugins).await.map_err(|e| {
        tracing::error!(error = %e, "plugin supervisor unreachable");
        ApiError::Unavailable("the plugin supervisor is not running".into())
    })?;
    Ok(axum::Json(
        json!({ "plugins": list, "failed": app.host.failures() }),
    ))
}

/// Which messages to show.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutboxParams {
    /// `pending`, `sent` or `failed` (the dead letters); all when absent.
    #[param(pattern = "^(pending|sent|failed)$")]
    status: Option<String>,
    /// At most this many, newest first (1–500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/v1/admin/outbox", tag = "ops", params(OutboxParams),
    responses((status = 200, body = [OutboxRow], description = "messages, newest first, without their contents"),
        (status = 401, description = "not signed in"), (status = 403, description = "not an operator")),
    security(("bearer" = [])))]
async fn outbox(
    State(app): State<OpsState>,
    _: Operator,
    Query(p): Query<OutboxParams>,
) -> ApiResult<axum::Json<Vec<OutboxRow>>> {
    if let Some(s) = &p.status
        && !matches!(s.as_str(), "pending" | "sent" | "failed" | "skipped")
    {
        return Err(ApiError::invalid(
            "status",
            "use pending, sent, failed or skipped",
        ));
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "use 1 to 500"));
    }
    Ok(axum::Json(
        mail_outbox::list(&app.db, p.status.as_deref(), limit).await?,
    ))
}

#[utoipa::path(post, path = "/v1/admin/outbox/{id}/retry", tag = "ops",
    params(("id" = String, Path, description = "the message id")),
    responses((status = 202, description = "the message is queued again, due now"),
        (status = 404, description = "no failed message has this id"),
        (status = 401, description = "not signed in"), (status = 403, description = "not an operator")),
    security(("bearer" = [])))]
async fn retry_message(
    State(app): State<OpsState>,
    _: Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if mail_outbox::retry(&app.db, &id).await? {
        app.outbox.notify_one();
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::NotFound("failed message"))
    }
}
