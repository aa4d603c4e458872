//! The scripted OpenAI-compatible server that tests and offline development use in place of a
//! model: real HTTP and SSE, deterministic answers, and every fault on demand.

use crate::common::*;
use penpal::llm::scripted::{self, Script};
use serde_json::{Value, json};

async fn start() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, scripted::router(Script::default())).await });
    addr
}

fn chat(message: &str, stream: bool, json_mode: bool) -> Value {
    let mut body = json!({
        "model": "whatever",
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "You are a tutor for a learner at CEFR level B1."},
            {"role": "user", "content": message}
        ]
    });
    if json_mode {
        body["response_format"] = json!({"type": "json_object"});
    }
    body
}

/// The `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn answers_whole_and_streamed_alike() {
    let addr = start().await;
    let (status, body) = post_json(
        addr,
        "/v1/chat/completions",
        &chat("Je suis allé au marché", false, false),
    )
    .await;
    assert_eq!(status, 200);
    let whole: Value = serde_json::from_str(&body).unwrap();
    let text = whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("penpal-scripted, level B1"), "{text}");
    assert!(text.contains("Je suis allé au marché"));
    assert!(whole["usage"]["completion_tokens"].as_u64().unwrap() > 5);

    let (status, body) = post_json(
        addr,
        "/v1/chat/completions",
        &chat("Je suis allé au marché", true, false),
    )
    .await;
    assert_eq!(status, 200);
    let events = sse_data(&body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, text, "the stream carries the same answer");
    assert!(chunks.len() > 5, "one chunk per word");
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .is_some()
    );
}

#[tokio::test]
async fn analyses_are_json_with_corrections_where_the_learner_wrote_them() {
    let addr = start().await;
    let (_, body) = post_json(
        addr,
        "/v1/chat/completions",
        &chat("Hier je va à le cinema", false, true),
    )
    .await;
    let whole: Value = serde_json::from_str(&body).unwrap();
    let analysis: Value =
        serde_json::from_str(whole["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    let originals: Vec<&str> = analysis["corrections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["original"].as_str().unwrap())
        .collect();
    assert_eq!(originals, ["à le", "je va", "cinema"]);
    assert_eq!(analysis["level"]["observed"], "A2");
}

#[tokio::test]
async fn every_fault_on_demand() {
    let addr = start().await;
    let (status, body) = post_json(
        addr,
        "/v1/chat/completions",
        &chat("x [[fault:500]]", true, false),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["type"],
        "scripted_fault"
    );
    let (status, _) = post_json(
        addr,
        "/v1/chat/completions",
        &chat("x [[fault:429]]", false, false),
    )
    .await;
    assert_eq!(status, 429);

    let (status, body) = post_json(
        addr,
        "/v1/chat/completions",
        &chat("un deux trois quatre [[fault:cut]]", true, false),
    )
    .await;
    assert_eq!(status, 200);
    let events = sse_data(&body);
    assert!(!events.is_empty());
    assert!(
        !events.contains(&"[DONE]".to_string()),
        "a cut stream never finishes"
    );

    let (_, body) = post_json(
        addr,
        "/v1/chat/completions",
        &chat("un deux trois [[fault:malformed]]", true, false),
    )
    .await;
    let events = sse_data(&body);
    assert!(
        events
            .iter()
            .any(|e| e != "[DONE]" && serde_json::from_str::<Value>(e).is_err())
    );
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));

    let started = std::time::Instant::now();
    let (status, _) = post_json(
        addr,
        "/v1/chat/completions",
        &chat("x [[slow:300]]", false, false),
    )
    .await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));

    let (status, body) =
        post_json(addr, "/v1/chat/completions", &json!({"messages": "nope"})).await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid request"));

    let (status, body) = get(addr, "/v1/models").await;
    assert_eq!(
        (status, body["data"][0]["id"].as_str()),
        (200, Some(scripted::MODEL))
    );
}
