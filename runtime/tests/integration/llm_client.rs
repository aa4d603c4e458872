//! The model client against real HTTP servers: the scripted one (every fault on demand) and a
//! deliberately non-conforming one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use axum::routing::post;
use futures_util::StreamExt;
use penpal::llm::scripted::{self, Script};
use penpal::llm::{LlmClient, LlmError, LlmSettings, Piece};
use penpal::plugins::types::{ChatMessage, CompletionRequest, Role};
use penpal::plugins::{Capabilities, Limits, Services};

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/v1")
}

async fn scripted_client(tune: impl FnOnce(&mut LlmSettings)) -> LlmClient {
    let url = serve(scripted::router(Script::default())).await;
    let mut settings = LlmSettings::new(url, "tutor-model");
    tune(&mut settings);
    LlmClient::new(settings).unwrap()
}

fn ask(text: &str, json: bool) -> CompletionRequest {
    CompletionRequest {
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: "A learner at CEFR level A2.".into(),
            },
            ChatMessage {
                role: Role::User,
                content: text.into(),
            },
        ],
        model: None,
        temperature: Some(0.5),
        max_tokens: Some(200),
        json,
    }
}

#[tokio::test]
async fn streams_an_answer_piece_by_piece_with_its_usage() {
    let client = scripted_client(|_| {}).await;
    let mut answer = within(10, "stream", client.stream(&ask("Bonjour !", false)))
        .await
        .unwrap();
    let mut text = String::new();
    let mut pieces = 0;
    let mut usage = None;
    while let Some(piece) = within(10, "piece", answer.next()).await {
        match piece.unwrap() {
            Piece::Text(t) => {
                pieces += 1;
                text.push_str(&t)
            }
            Piece::Done(u) => usage = Some(u),
        }
    }
    assert!(pieces > 5, "{pieces} pieces");
    assert!(text.starts_with("(penpal-scripted, level A2)"), "{text}");
    assert!(text.contains("Bonjour !"));
    let usage = usage.expect("a finished answer");
    assert!(usage.prompt > 0 && usage.completion > 0);

    let (json, _) = client
        .complete(&ask("je va à le cinema", true))
        .await
        .unwrap();
    let analysis: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(analysis["corrections"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff_then_reported() {
    let client = scripted_client(|s| s.retries = 2).await;
    for (fault, status) in [("500", 500), ("429", 429)] {
        let started = Instant::now();
        let err = within(
            20,
            fault,
            client.complete(&ask(&format!("x [[fault:{fault}]]"), false)),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, LlmError::Status { status: s, .. } if s == status),
            "{err:?}"
        );
        // Two retries: at least 100 + 200 ms of jittered backoff for the 500, and the
        // second asked for by the 429's `retry-after: 1`.
        let least = if status == 429 { 2000 } else { 300 };
        assert!(
            started.elapsed() >= Duration::from_millis(least),
            "{fault} was retried"
        );
    }
}

/// One penpal attempt is one request (no library retries underneath), and `Retry-After` is
/// waited for.
#[tokio::test]
async fn each_attempt_sends_exactly_one_request() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let url = serve(axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", "1")],
                    axum::Json(serde_json::json!({"error": {"message": "overloaded", "type": "server_error", "param": null, "code": null}})),
                )
            }
        }),
    ))
    .await;
    for (retries, requests) in [(0, 1), (2, 3)] {
        seen.store(0, Ordering::SeqCst);
        let mut settings = LlmSettings::new(url.clone(), "m");
        settings.retries = retries;
        let client = LlmClient::new(settings).unwrap();
        let started = Instant::now();
        let err = within(30, "failing model", client.complete(&ask("hi", false)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LlmError::Status { status: 503, .. }),
            "{err:?}"
        );
        assert_eq!(
            seen.load(Ordering::SeqCst),
            requests,
            "with {retries} retries"
        );
        assert!(started.elapsed() >= Duration::from_secs(u64::from(retries)));
    }
}

#[tokio::test]
async fn a_silent_model_times_out() {
    let client = scripted_client(|s| {
        s.first_chunk_timeout = Duration::from_millis(300);
        s.retries = 0;
    })
    .await;
    let err = within(
        10,
        "timeout",
        client.complete(&ask("x [[fault:timeout]]", false)),
    )
    .await
    .unwrap_err();
    assert_eq!(err, LlmError::Timeout(Duration::from_millis(300)));
}

#[tokio::test]
async fn broken_streams_end_with_an_error_after_what_arrived() {
    let client = scripted_client(|_| {}).await;
    for (fault, expect_cut) in [("cut", true), ("malformed", false)] {
        let mut answer = client
            .stream(&ask(
                &format!("un deux trois quatre cinq six [[fault:{fault}]]"),
                false,
            ))
            .await
            .unwrap();
        let mut got_text = false;
        let mut error = None;
        while let Some(piece) = within(10, fault, answer.next()).await {
            match piece {
                Ok(Piece::Text(_)) => got_text = true,
                Ok(Piece::Done(_)) => panic!("{fault}: a broken stream must not finish"),
                Err(e) => error = Some(e),
            }
        }
        assert!(got_text, "{fault}: the first pieces arrived");
        match error {
            Some(LlmError::Cut) => assert!(expect_cut, "{fault}"),
            Some(LlmError::Malformed(_)) => assert!(!expect_cut, "{fault}"),
            other => panic!("{fault}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_failing_model_is_put_behind_a_breaker() {
    let client = scripted_client(|s| {
        s.retries = 0;
        s.breaker_faults = 2;
        s.breaker_cool_down = Duration::from_secs(30);
    })
    .await;
    for _ in 0..2 {
        assert!(matches!(
            client.complete(&ask("x [[fault:500]]", false)).await,
            Err(LlmError::Status { status: 500, .. })
        ));
    }
    assert!(matches!(
        client.complete(&ask("fine", false)).await,
        Err(LlmError::CircuitOpen(_))
    ));
}

#[tokio::test]
async fn tolerates_servers_that_bend_the_chunk_format() {
    // No ids, no `object`, `content: null`, comments and extra fields, usage without a total.
    let body = ": keep-alive\n\n\
        data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n\
        data: {\"choices\":[{\"delta\":{\"content\":\"Bon\"},\"extra\":true}]}\n\n\
        data: {\"choices\":[{\"delta\":{\"content\":null}}]}\n\n\
        data: {\"choices\":[{\"delta\":{\"content\":\"jour\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n\
        data: [DONE]\n\n";
    let router = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                body,
            )
        }),
    );
    let client = LlmClient::new(LlmSettings::new(serve(router).await, "local")).unwrap();
    let (text, usage) = client.complete(&ask("salut", false)).await.unwrap();
    assert_eq!(text, "Bonjour");
    assert_eq!((usage.prompt, usage.completion), (3, 2));
}

#[tokio::test]
async fn plugins_reach_the_model_through_the_llm_capability_and_are_metered() {
    let client = scripted_client(|_| {}).await;
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let pricing = penpal::llm::usage::Pricing {
        prompt: 1.0,
        completion: 2.0,
    };
    let metered = penpal::llm::usage::MeteredModel::new(Arc::new(client), db.clone(), pricing);
    let host = host_with(
        Limits::default(),
        Services {
            llm: Some(Arc::new(metered)),
            ..Services::default()
        },
    );
    let grants = Capabilities {
        llm: true,
        ..Capabilities::default()
    };
    host.install_path(&guest("snoop"), &grants).unwrap();
    let plan = tutors(&host)
        .plan_turn(
            "snoop",
            &turn(
                "k",
                penpal::tutoring::tutor::CefrLevel::B1,
                penpal::tutoring::tutor::ChatMode::Tutor,
            ),
        )
        .await
        .unwrap();
    let report = &plan.reply.messages[0].content;
    assert!(report.contains("llm=ok:\"(penpal-scripted"), "{report}");
    assert!(
        host.get("snoop")
            .unwrap()
            .identity
            .health
            .report()
            .llm_tokens
            > 0
    );
    // Recorded as usage under the plugin's name, priced like any other call.
    let rows: Vec<serde_json::Value> = db
        .rows(
            "SELECT plugin, purpose, user, prompt_tokens, completion_tokens, cost_micros FROM usage",
            serde_json::json!({}),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        (row["plugin"].as_str(), row["purpose"].as_str()),
        (Some("snoop"), Some("plugin"))
    );
    assert!(row["user"].is_null());
    let (p, c) = (
        row["prompt_tokens"].as_i64().unwrap(),
        row["completion_tokens"].as_i64().unwrap(),
    );
    assert!(p > 0 && c > 0);
    assert_eq!(row["cost_micros"].as_i64().unwrap(), p + 2 * c);
}

/// A server that reports no usage (Ollama-style streams) is counted by penpal's tokenizer
/// and marked as estimated; reported usage is taken as it is.
#[tokio::test]
async fn usage_is_counted_and_marked_estimated_when_the_server_reports_none() {
    let client = scripted_client(|_| {}).await;
    let (text, reported) = client.complete(&ask("Bonjour !", false)).await.unwrap();
    assert!(!reported.estimated && reported.completion > 0);
    let (same, counted) = client
        .complete(&ask("Bonjour ! [[usage:none]]", false))
        .await
        .unwrap();
    assert!(counted.estimated, "{counted:?}");
    assert!(counted.prompt > 10 && counted.completion > 5, "{counted:?}");
    assert_eq!(
        counted.completion,
        penpal::llm::estimate_tokens(&same),
        "the reply's own tokens"
    );
    let _ = text;
}
