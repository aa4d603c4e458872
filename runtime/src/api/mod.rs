//! The HTTP API: the shared application state, the router every room contributes to, the
//! OpenAPI document generated from the handlers' annotations, and the cross-cutting layers
//! (CORS, body size limit, compression, security headers, 404s).

mod client;
mod docs;
mod error;
mod extract;
pub mod limit;
pub mod observe;
pub mod serve;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

pub use client::{ClientIp, ClientKey, client_addr};
pub use error::{ApiError, ApiResult, redact_secrets, report};
pub use extract::{AuthUser, Json, Operator, Path, Query, bearer};

use crate::actors::conversation::Registry;
use crate::actors::supervisor::PluginSupervisor;
use crate::auth::{Keys, Throttle};
use crate::llm::LlmClient;
use crate::ops::LlmInfo;
use crate::plugins::PluginHost;
use crate::store::Db;
use crate::tutoring::demo::DemoLimiter;

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Mark session cookies `Secure` (off only for plain-http development).
    pub secure_cookies: bool,
    /// Sign-ups one client may make per hour.
    pub signups_per_hour: usize,
    /// Token budget of the verbatim window.
    pub context_tokens: usize,
    /// What the model's tokens cost.
    pub pricing: crate::llm::usage::Pricing,
    /// Allowed CORS origins.
    pub cors_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Longest stall of a request body between chunks.
    pub body_timeout: std::time::Duration,
}

/// Everything a request may need.
pub struct App {
    /// The database.
    pub db: Db,
    /// The plugin host.
    pub host: Arc<PluginHost>,
    /// The tutor personalities, whatever WIT version they target.
    pub tutors: crate::tutoring::tutor::TutorClient,
    /// The plugin supervisor.
    pub supervisor: actix::Addr<PluginSupervisor>,
    /// The model client.
    pub llm: Arc<LlmClient>,
    /// Which model, for `/v1/version`.
    pub llm_info: LlmInfo,
    /// Token keys.
    pub keys: Keys,
    /// Login throttle.
    pub throttle: Throttle,
    /// Sign-ups per client in the last hour.
    pub signups: limit::Window<ClientKey>,
    /// Demo limiter.
    pub demo: DemoLimiter,
    /// Running conversation actors.
    pub conversations: Registry,
    /// Every room's part of a person's data, for the export and account deletion.
    pub personal: Vec<Arc<dyn crate::store::personal::PersonalData>>,
    /// Settings.
    pub settings: Settings,
}

/// The state handlers get.
pub type AppState = Arc<App>;

#[derive(OpenApi)]
#[openapi(
    info(title = "Penpal API", description = "Practise a language with an AI tutor. Errors are `{\"error\": {\"code\", \"message\"}}`."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The router and the OpenAPI document describing it.
pub fn router(app: AppState) -> Router {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::auth::routes::router())
        .merge(crate::tutoring::profile::router())
        .merge(crate::tutoring::conversations::router())
        .merge(crate::tutoring::memory::router())
        .merge(crate::tutoring::live::router())
        .merge(crate::tutoring::progress::router())
        .merge(crate::tutoring::demo::router())
        .merge(crate::ops::router())
        .split_for_parts();
    let doc = Arc::new(docs::finish(doc));
    let asyncapi = Arc::new(crate::tutoring::protocol::asyncapi());
    let max_body = app.settings.max_body;
    let body_timeout = app.settings.body_timeout;
    let cors = cors(&app.settings.cors_origins);
    let mut router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route(
            "/asyncapi.json",
            axum::routing::get(move || {
                let doc = asyncapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(crate::web::router())
        .route_layer(axum::middleware::from_fn(observe::note_route))
        .fallback(crate::web::not_found)
        .method_not_allowed_fallback(|| async {
            (StatusCode::METHOD_NOT_ALLOWED, axum::Json(json!({"error": {"code": "method_not_allowed", "message": "this route does not take that method"}})))
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::from_fn(crate::web::security_headers))
        // Gzip for pages, assets and JSON; event streams are left uncompressed by default.
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(app);
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    router
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .expose_headers([header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}
