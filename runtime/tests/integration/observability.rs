//! Metrics and traces as an operator sees them: a real Prometheus (Debian's) scraping a real
//! `penpal serve` after a chat turn, spans reaching an OTLP/HTTP receiver, request ids on
//! every response, and model calls made for plugins metered like the learners' own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Opens a conversation's socket and takes one turn over it; the socket stays open.
async fn turn_over_socket(
    base: &str,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let http = http();
    let conv: Value = http
        .post(format!("{base}/v1/conversations"))
        .bearer_auth(token)
        .json(&json!({"mode": "tutor"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = conv["id"].as_str().unwrap();
    let ticket: Value = http
        .post(format!("{base}/v1/conversations/{id}/live-ticket"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!(
        "{}/v1/conversations/{id}/live?ticket={}",
        base.replace("http://", "ws://"),
        ticket["ticket"].as_str().unwrap()
    );
    let (mut ws, _) = within(10, "socket", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    ws.send(Ws::Text(
        json!({"type": "message", "text": "Je va au cinema"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    within(30, "turn.complete", async {
        while let Some(Ok(frame)) = ws.next().await {
            if let Ws::Text(t) = frame {
                let e: Value = serde_json::from_str(&t).unwrap();
                assert_ne!(e["type"], "turn.error", "{e}");
                if e["type"] == "turn.complete" {
                    return;
                }
            }
        }
        panic!("the socket closed before the turn completed");
    })
    .await;
    ws
}

/// Debian's Prometheus, scraping `target` every second, until dropped.
struct Prometheus {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: penpal\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Debian's prometheus is installed (cargo xtask test installs it)");
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// The value of the instant query `q` (its first series), once it has one.
    async fn value(&self, q: &str) -> f64 {
        let http = http();
        within(60, &format!("prometheus answers {q}"), async {
            loop {
                if let Ok(r) = http
                    .get(format!("{}/api/v1/query", self.base))
                    .query(&[("query", q)])
                    .send()
                    .await
                    && let Ok(body) = r.json::<Value>().await
                    && let Some(v) = body["data"]["result"][0]["value"][1].as_str()
                {
                    return v.parse().unwrap();
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
        .await
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_series_after_a_chat_turn() {
    let data = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let server = Process::start(data.path(), &[("PENPAL_METRICS_LISTEN", &metrics)]).await;
    let base = server.url("");
    let token = new_learner(&base, "B1").await;
    let _socket = turn_over_socket(&base, &token).await;

    // Metrics are served on their own address only.
    let api = http().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(api.status(), 404);
    let text = http()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Prometheus' own linter accepts the exposition.
    let mut lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        lint.stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let prometheus = Prometheus::start(&metrics);
    assert_eq!(prometheus.value(r#"up{job="penpal"}"#).await, 1.0);
    let at_least_one = [
        "penpal_turns_started_total",
        "penpal_turns_completed_total",
        "penpal_turn_first_delta_seconds_count",
        r#"penpal_http_requests_total{method="POST",route="/v1/conversations",status="201"}"#,
        r#"penpal_http_request_duration_seconds_count{route="/v1/me/profile",status="200"}"#,
        r#"sum(penpal_model_calls_total{outcome="ok"})"#,
        r#"sum(penpal_model_first_piece_seconds_count)"#,
        r#"sum(penpal_model_tokens_total{purpose="reply",kind="completion"})"#,
        r#"sum(penpal_model_tokens_total{purpose="analysis",kind="prompt"})"#,
        r#"penpal_plugin_calls_total{plugin="tutor",world="tutor",function="plan-turn",outcome="ok"}"#,
        r#"penpal_plugin_calls_total{plugin="tutor",world="tutor",function="review-turn",outcome="ok"}"#,
        r#"penpal_plugin_call_duration_seconds_count{plugin="tutor",function="plan-turn"}"#,
        r#"penpal_db_statement_duration_seconds_count{outcome="ok"}"#,
        "penpal_open_sockets",
        // Mail waits in the outbox here (no SMTP server is configured): the signed-up
        // learner's verification.
        "penpal_outbox_pending",
    ];
    for q in at_least_one {
        let v = prometheus.value(q).await;
        assert!(v >= 1.0, "{q} = {v}");
    }
    assert_eq!(
        prometheus
            .value(r#"penpal_plugin_breaker_state{plugin="tutor"}"#)
            .await,
        0.0
    );
    // Histograms have buckets, so quantiles can be computed over any window.
    let p99 = prometheus
        .value("histogram_quantile(0.99, sum by (le) (rate(penpal_http_request_duration_seconds_bucket[1m])))")
        .await;
    assert!(p99.is_nan() || p99 >= 0.0, "{p99}");
    server.stop();
}

#[test]
fn the_deployed_prometheus_configuration_is_valid() {
    let config = repo().join("deploy/prometheus.yml");
    let out = std::process::Command::new("promtool")
        .arg("check")
        .arg("config")
        .arg(&config)
        .output()
        .expect("Debian's promtool is installed (cargo xtask test installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[actix_rt::test]
async fn every_response_carries_a_request_id_and_a_clean_one_from_the_client_is_kept() {
    let data = tempfile::tempdir().unwrap();
    let server = start(serve_args(data.path(), None)).await;
    let http = http();
    let first = http.get(server.url("/healthz")).send().await.unwrap();
    let second = http.get(server.url("/healthz")).send().await.unwrap();
    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id(&first).len(), 32);
    assert_ne!(id(&first), id(&second), "one id per request");
    let missing = http
        .get(server.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(id(&missing).len(), 32, "errors carry one too");

    let kept = http
        .get(server.url("/healthz"))
        .header("x-request-id", "lb-7f3a.1")
        .send()
        .await
        .unwrap();
    assert_eq!(id(&kept), "lb-7f3a.1");
    let replaced = http
        .get(server.url("/healthz"))
        .header("x-request-id", "a b <script>")
        .send()
        .await
        .unwrap();
    assert_eq!(id(&replaced).len(), 32, "an unsafe id is not echoed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_requests_and_turns_reach_an_otlp_collector() {
    // A receiver of OTLP/HTTP: it keeps every body posted to /v1/traces.
    let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body.to_vec());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data = tempfile::tempdir().unwrap();
    let server = Process::start(data.path(), &[("PENPAL_OTLP_ENDPOINT", &collector)]).await;
    let base = server.url("");
    let traced = http()
        .get(server.url("/v1/version"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 200);
    let token = new_learner(&base, "B1").await;
    drop(turn_over_socket(&base, &token).await);
    // A clean stop sends what is still batched.
    server.stop();

    let all: Vec<u8> = bodies.lock().unwrap().concat();
    let has = |s: &str| all.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(!all.is_empty(), "nothing reached the collector");
    assert!(has("penpal"), "the service is named");
    assert!(has("request"), "request spans");
    assert!(has("trace-me-42"), "the request id is on its span");
    assert!(has("/v1/version"), "the route is on its span");
    assert!(has("turn"), "turn spans");
    assert!(has("penpal-scripted"), "the turn's span names its model");
}

#[actix_rt::test]
async fn model_calls_a_plugin_makes_are_metered_under_its_name() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("penpal.toml");
    std::fs::write(&config, "[plugins.snoop]\ngrant = { llm = true }\n").unwrap();
    let mut args = serve_args(data.path(), None);
    args.plugins.plugin_dirs.push(guest("snoop"));
    args.plugins.config = Some(config);
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = start_on(args, db.clone()).await;
    let base = server.url("");
    let token = new_learner(&base, "B1").await;
    let http = http();
    let conv: Value = http
        .post(format!("{base}/v1/conversations"))
        .bearer_auth(&token)
        .json(&json!({"mode": "tutor", "personality": "snoop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = conv["id"].as_str().unwrap_or_else(|| panic!("{conv}"));
    let turn: Value = http
        .post(format!("{base}/v1/conversations/{id}/messages"))
        .bearer_auth(&token)
        .json(&json!({"text": "bonjour"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        turn["reply"]["text"].as_str().is_some(),
        "the turn was answered: {turn}"
    );
    let rows: Vec<Value> = db
        .rows(
            "SELECT plugin, purpose, model, prompt_tokens, completion_tokens FROM usage WHERE plugin = 'snoop'",
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["purpose"], "plugin");
    assert_eq!(rows[0]["model"], "penpal-scripted");
    assert!(
        rows[0]["completion_tokens"].as_i64().unwrap() > 0,
        "{rows:?}"
    );
    server.stop().await;
}
