//! The HTTP API: the router every room contributes its routes (with its own state) to, the
//! OpenAPI document generated from the handlers' annotations, and the cross-cutting layers
//! (CORS, body size limit, compression, security headers, request ids, 404s).

mod docs;
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

use crate::actors::live::LiveState;
use crate::auth::AuthState;
use crate::ops::OpsState;
use crate::tutoring::state::TutoringState;

/// Each room's state, as the composition root built it. No state is shared across rooms:
/// each room's handlers see only their own.
pub struct Rooms {
    /// Accounts and sessions.
    pub auth: AuthState,
    /// Profiles, conversations, progress, the demo.
    pub tutoring: TutoringState,
    /// The live socket and whole-reply turns.
    pub live: LiveState,
    /// Plans and what an account may do.
    pub billing: crate::billing::routes::BillingState,
    /// Notification settings and unsubscribe links.
    pub notify: crate::notify::routes::NotifyState,
    /// Schools, their members and invitations.
    pub schools: crate::lms::routes::SchoolsState,
    /// LTI launches, platforms and the tool's keys.
    pub lti: crate::lms::lti::routes::LtiState,
    /// Schools' sign-in through their identity providers.
    pub sso: crate::lms::sso::routes::SsoState,
    /// Publishers and the registry.
    pub marketplace: crate::marketplace::routes::MarketplaceState,
    /// Health, readiness, status.
    pub ops: OpsState,
}

/// What the layers around every route use.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Allowed CORS origins.
    pub cors_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Longest stall of a request body between chunks.
    pub body_timeout: std::time::Duration,
}

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
pub fn router(rooms: Rooms, settings: &HttpSettings) -> Router {
    let lti_db = rooms.lti.db.clone();
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::auth::routes::router(rooms.auth))
        .merge(crate::tutoring::router(rooms.tutoring))
        .merge(crate::actors::live::router(rooms.live))
        .merge(crate::notify::routes::router(rooms.notify))
        .merge(crate::billing::routes::router(rooms.billing))
        .merge(crate::lms::routes::router(rooms.schools))
        .merge(crate::lms::lti::routes::router(rooms.lti))
        .merge(crate::lms::sso::routes::router(rooms.sso))
        .merge(crate::marketplace::routes::router(rooms.marketplace))
        .merge(crate::ops::router(rooms.ops))
        .split_for_parts();
    let doc = Arc::new(docs::finish(doc));
    let asyncapi = Arc::new(crate::tutoring::protocol::asyncapi());
    let max_body = settings.max_body;
    let body_timeout = settings.body_timeout;
    let cors = cors(&settings.cors_origins);
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
        .merge(crate::web::lti_router(lti_db))
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
        .layer(axum::middleware::from_fn(observe::observe));
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
