//! What every request leaves behind: an id (taken from a well-formed `X-Request-Id`, made
//! otherwise) returned in the `X-Request-Id` response header, a `request` span carrying it
//! (so every log line and exported span of the request names it), and the HTTP metrics by
//! route template, never by raw path (a path holds ids: one series each would be unbounded).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The response header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// The route a request matched, noted on its response for [`observe`], which runs outside
/// routing and cannot see it.
#[derive(Clone)]
struct Route(String);

/// Inner layer (a route layer): notes the matched route template on the response.
pub async fn note_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// An id a client sent that is safe to log and echo: 1–64 of `A-Z a-z 0-9 - _ .`.
fn usable(id: &HeaderValue) -> Option<&str> {
    let id = id.to_str().ok()?;
    ((1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    .then_some(id)
}

/// A fresh request id: 16 random bytes in hex.
fn fresh() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Outer layer: the request's id, span and metrics.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(usable)
        .map(str::to_string)
        .unwrap_or_else(fresh);
    let method = request.method().to_string();
    let span = tracing::info_span!("request", method = %method, path = %request.uri().path(),
        request_id = %id, route = tracing::field::Empty, status = tracing::field::Empty);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let route = response
        .extensions()
        .get::<Route>()
        .map_or_else(|| "unmatched".to_string(), |r| r.0.clone());
    span.record("route", route.as_str());
    span.record("status", status);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = status.to_string();
    metrics::counter!("penpal_http_requests_total", "method" => method.clone(), "route" => route.clone(),
        "status" => status.clone())
    .increment(1);
    metrics::histogram!("penpal_http_request_duration_seconds", "method" => method, "route" => route,
        "status" => status)
    .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_short_plain_id_from_a_client_is_kept() {
        let ok = HeaderValue::from_static("req-1.a_B");
        assert_eq!(usable(&ok), Some("req-1.a_B"));
        for bad in ["", "a b", "x\u{7f}", "<script>", &"a".repeat(65)] {
            if let Ok(v) = HeaderValue::from_str(bad) {
                assert_eq!(usable(&v), None, "{bad:?}");
            }
        }
        let id = fresh();
        assert_eq!(id.len(), 32);
        assert_ne!(id, fresh());
    }
}
