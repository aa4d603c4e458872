//! The learner web app: its files, embedded in the binary at build time so `penpal serve`
//! needs nothing beside it, the page routes that all answer with the app's shell, and the
//! security headers every response carries.
//!
//! The app itself is plain ES modules (`runtime/web/`), with no build step: what is in the
//! repository is what the browser runs.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::http::ApiError;

/// One embedded file.
struct Asset {
    path: &'static str,
    mime: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $mime:literal),* $(,)?) => {
        &[$(Asset { path: $path, mime: $mime, bytes: include_bytes!(concat!("../../web/", $path)) }),*]
    };
}

const ASSETS: &[Asset] = assets![
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/app.js" => "text/javascript; charset=utf-8",
    "js/api.js" => "text/javascript; charset=utf-8",
    "js/i18n.js" => "text/javascript; charset=utf-8",
    "js/ui.js" => "text/javascript; charset=utf-8",
    "js/pages.js" => "text/javascript; charset=utf-8",
    "js/chat.js" => "text/javascript; charset=utf-8",
    "js/charts.js" => "text/javascript; charset=utf-8",
    "js/school.js" => "text/javascript; charset=utf-8",
    "js/market.js" => "text/javascript; charset=utf-8",
];

/// The client-side routes: each is served the app shell, which draws the page.
pub const PAGES: &[&str] = &[
    "/",
    "/demo",
    "/signup",
    "/login",
    "/forgot-password",
    "/reset-password",
    "/verify-email",
    "/unsubscribe",
    "/pricing",
    "/join",
    "/welcome",
    "/chat",
    "/progress",
    "/review",
    "/settings",
    "/chat/{id}",
    "/classes",
    "/classes/{id}",
    "/classes/{id}/pick",
    "/assignments/{id}",
    "/marketplace",
    "/marketplace/{name}",
    "/publisher",
];

/// Weak validators, computed once: the content hash of each asset.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let d = Sha256::digest(a.bytes);
            let hex: String = d[..12].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\""))
                .unwrap_or(HeaderValue::from_static("\"0\""))
        })
        .collect()
});

/// The policy for pages: scripts, styles and connections only from penpal itself, no
/// inline script or style, never framed.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";
/// The policy for everything else (JSON, CSV): nothing runs.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

fn asset_response(i: usize, status: StatusCode, headers: &HeaderMap) -> Response {
    let a = &ASSETS[i];
    let etag = ETAGS[i].clone();
    if status == StatusCode::OK
        && headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        // The type goes with the 304 too: browsers take the revalidation's headers, and the
        // page policy is chosen by type (without it a reloaded page got the API's policy).
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::CONTENT_TYPE, HeaderValue::from_static(a.mime)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
        )
            .into_response();
    }
    let mut resp = Response::new(Body::from(a.bytes));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::ETAG, etag);
    // Revalidate every time: an upgrade of penpal must reach browsers at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn index() -> usize {
    ASSETS
        .iter()
        .position(|a| a.path == "index.html")
        .unwrap_or(0)
}

/// A file under `/assets/`.
async fn asset(
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    match ASSETS
        .iter()
        .position(|a| a.path == path && a.path != "index.html")
    {
        Some(i) => asset_response(i, StatusCode::OK, &headers),
        None => ApiError::NotFound("asset").into_response(),
    }
}

/// The app's routes.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new().route("/assets/{*path}", axum::routing::get(asset));
    for page in PAGES {
        r = r.route(
            page,
            axum::routing::get(|headers: HeaderMap| async move {
                asset_response(index(), StatusCode::OK, &headers)
            }),
        );
    }
    r
}

/// The page an LTI launch lands on (`/lti?code=…&next=…`), and a school sign-in
/// (`/arrive?…`): the app, which exchanges the code for a session. LMSs show tools inside their own pages, so while the code is live the
/// launching LMS's origin (it came with the verified launch) may frame it; the app then runs
/// in that frame without reloading.
pub fn lti_router(db: crate::store::Db) -> Router {
    Router::new()
        .route("/lti", axum::routing::get(lti_landing))
        .route("/arrive", axum::routing::get(lti_landing))
        .with_state(db)
}

async fn lti_landing(
    axum::extract::State(db): axum::extract::State<crate::store::Db>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let frame = match q.get("code") {
        Some(code) => crate::auth::handoff::frame_of(&db, code)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    // Never revalidated: each landing's framing depends on its code.
    let mut resp = asset_response(index(), StatusCode::OK, &HeaderMap::new());
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(origin) = frame
        && let Ok(v) = HeaderValue::from_str(&PAGE_CSP.replace(
            "frame-ancestors 'none'",
            &format!("frame-ancestors 'self' {origin}"),
        ))
    {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// What an unknown route answers: a browser asking for a page gets the app, which says the
/// page does not exist; an API client gets a JSON 404.
pub async fn not_found(req: Request) -> Response {
    let wants_page = matches!(*req.method(), Method::GET | Method::HEAD)
        && !req.uri().path().starts_with("/v1/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
    if wants_page {
        asset_response(index(), StatusCode::NOT_FOUND, req.headers())
    } else {
        ApiError::NotFound("route").into_response()
    }
}

/// Adds the security headers to every response.
pub async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let h = resp.headers_mut();
    // A page made for an LMS's frame (LTI registration) sets its own policy and framing.
    let own_framing = h
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.contains("frame-ancestors 'none'"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(if is_html {
            PAGE_CSP
        } else {
            API_CSP
        }));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !own_framing {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.entry("cross-origin-opener-policy")
        .or_insert(HeaderValue::from_static("same-origin"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_the_shell_loads_only_embedded_files() {
        let shell = std::str::from_utf8(ASSETS[index()].bytes).unwrap_or_default();
        assert!(shell.contains("/assets/js/app.js"));
        for a in ASSETS {
            assert!(!a.bytes.is_empty(), "{} is empty", a.path);
        }
        // No inline script: the CSP would block it.
        assert!(!shell.contains("<script>"), "inline script in index.html");
        for src in shell.split("src=\"").skip(1) {
            let url = src.split('"').next().unwrap_or_default();
            let path = url.trim_start_matches("/assets/");
            assert!(
                ASSETS.iter().any(|a| a.path == path),
                "{url} is not embedded"
            );
        }
    }
}
