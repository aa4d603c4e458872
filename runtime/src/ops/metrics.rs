//! Metrics: the process-wide Prometheus recorder, the series every room records, and the
//! listener that serves them at `GET /metrics` on an address of its own
//! (`--metrics-listen`, loopback by default, so the figures are never public by accident).
//!
//! Rooms record with the `metrics` macros where the thing happens; this module names and
//! describes every series once:
//!
//! | series | labels | what |
//! |---|---|---|
//! | `penpal_http_requests_total` | method, route, status | requests answered |
//! | `penpal_http_request_duration_seconds` | method, route, status | time to the response head |
//! | `penpal_turns_started_total` | | chat turns begun (learner message stored) |
//! | `penpal_turns_completed_total` | | turns answered and stored |
//! | `penpal_turns_failed_total` | code | turns ended by an error, by its code |
//! | `penpal_turn_first_delta_seconds` | | learner message stored → first reply text |
//! | `penpal_model_calls_total` | model, outcome | calls to the model (`ok` once it answers) |
//! | `penpal_model_first_piece_seconds` | model | request → first piece of the answer |
//! | `penpal_model_tokens_total` | model, purpose, kind | tokens used (`prompt`, `completion`) |
//! | `penpal_model_cost_micros_total` | model, purpose | what they cost, millionths of a USD |
//! | `penpal_plugin_calls_total` | plugin, world, function, outcome | plugin calls |
//! | `penpal_plugin_call_duration_seconds` | plugin, world, function | plugin calls |
//! | `penpal_plugin_breaker_state` | plugin | 0 closed, 1 half-open, 2 open |
//! | `penpal_db_statement_duration_seconds` | outcome | database round trips |
//! | `penpal_open_sockets` | | live WebSockets |
//! | `penpal_outbox_pending` | | messages waiting in the outbox |
//! | `penpal_outbox_deliveries_total` | channel, outcome | delivery attempts: `sent`, `pending` (to be retried), `failed` |

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds of every `_seconds` histogram: from a millisecond to a slow model's minute.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once; later calls return the same
/// handle). `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            // Histograms keep raw samples until upkeep folds them into buckets.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("penpal_http_requests_total", "HTTP requests answered");
    describe_histogram!(
        "penpal_http_request_duration_seconds",
        Unit::Seconds,
        "Time from a request to its response head"
    );
    describe_counter!("penpal_turns_started_total", "Chat turns begun");
    describe_counter!(
        "penpal_turns_completed_total",
        "Chat turns answered and stored"
    );
    describe_counter!("penpal_turns_failed_total", "Chat turns ended by an error");
    describe_histogram!(
        "penpal_turn_first_delta_seconds",
        Unit::Seconds,
        "From the learner's message being stored to the first reply text"
    );
    describe_counter!("penpal_model_calls_total", "Calls to the language model");
    describe_histogram!(
        "penpal_model_first_piece_seconds",
        Unit::Seconds,
        "From a request to the language model to the first piece of its answer"
    );
    describe_counter!("penpal_model_tokens_total", "Tokens the model used");
    describe_counter!(
        "penpal_model_cost_micros_total",
        "What the model's tokens cost, in millionths of a USD"
    );
    describe_counter!(
        "penpal_plugin_calls_total",
        "Plugin calls, by how they ended"
    );
    describe_histogram!(
        "penpal_plugin_call_duration_seconds",
        Unit::Seconds,
        "Plugin calls, instantiation included"
    );
    describe_gauge!(
        "penpal_plugin_breaker_state",
        "A plugin's circuit breaker: 0 closed, 1 half-open, 2 open"
    );
    describe_histogram!(
        "penpal_db_statement_duration_seconds",
        Unit::Seconds,
        "Database round trips"
    );
    describe_gauge!("penpal_open_sockets", "Live WebSocket connections");
    describe_gauge!(
        "penpal_outbox_pending",
        "Messages waiting in the outbox (due or waiting to be retried)"
    );
    describe_counter!(
        "penpal_outbox_deliveries_total",
        "Outbox delivery attempts, by channel and outcome (sent, pending: to be retried, failed)"
    );
}

/// The metrics listener's routes: `GET /metrics` in Prometheus' text format.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(handle))
        .with_graceful_shutdown(shutdown)
        .await
}
