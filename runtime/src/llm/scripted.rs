//! A scripted OpenAI-compatible server: real HTTP, real SSE streaming, deterministic answers.
//!
//! Tests and offline development need a model that answers the same way every time, fast or
//! slow on demand, and that can fail in each way a real endpoint fails. This server speaks
//! the subset of the OpenAI API penpal uses — `POST /v1/chat/completions` (streamed or not,
//! with `response_format: json_object` for analyses) and `GET /v1/models` — and is never
//! mistaken for a real model: its model id is `penpal-scripted` and every reply says so.
//!
//! Markers in the last user message script a fault or a delay:
//!
//! | marker | effect |
//! |---|---|
//! | `[[fault:500]]` | HTTP 500 with an OpenAI-style error body |
//! | `[[fault:429]]` | HTTP 429 with `retry-after: 1` |
//! | `[[fault:timeout]]` | no answer for a minute |
//! | `[[fault:malformed]]` | a stream with one chunk that is not JSON |
//! | `[[fault:cut]]` | a stream that stops halfway, without `[DONE]` |
//! | `[[flaky]]` | a cut stream the first time this exact request is seen, then answers |
//! | `[[slow:MS]]` | waits MS milliseconds before the first byte |
//! | `[[usage:none]]` | a stream that reports no usage, as Ollama-style servers do |
//! | `[[assessment:500]]` | (anywhere in a transcript) an assessment request answers HTTP 500 |
//! | `[[assessment:malformed]]` | (anywhere in a transcript) an assessment answered in prose |
//!
//! Replies name the CEFR level found in the system prompt (`level B1`), so a test can see a
//! learner's level reach the model, and end with how many earlier messages came with the
//! request (`[history: 4]`), so a test can see the conversation's window reach it.
//! Analyses correct a small table of classic French errors; rubric assessments (see
//! `assessment`) are worked out from the transcript so tests can predict them.

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// The model id the scripted server reports.
pub const MODEL: &str = "penpal-scripted";

/// Timing of the scripted server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Script {
    /// Delay before the first byte of every answer.
    pub first_byte: Duration,
    /// Delay between streamed chunks.
    pub between_chunks: Duration,
}

/// Requests a `[[flaky]]` marker has already failed once.
type Seen = std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

/// `listener` with Nagle's algorithm off on each connection: a stream's chunks go out as they
/// are written, as a real model server's do, instead of each waiting for the client's delayed
/// ACK (about 40 ms on Linux).
pub fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

/// The server's routes.
pub fn router(script: Script) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/v1/models", get(models))
        .with_state((script, Seen::default()))
}

#[derive(Debug, Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResponseFormat {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
struct CompletionRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<Message>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    response_format: Option<ResponseFormat>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

async fn models() -> Json<Value> {
    Json(
        json!({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "penpal"}]}),
    )
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": "scripted_fault", "param": null, "code": status.as_str()}})),
    )
        .into_response()
}

/// The marker `[[name:value]]` in `text`, if any.
fn marker<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("[[{name}:"))? + name.len() + 3;
    let end = text[start..].find("]]")? + start;
    Some(&text[start..end])
}

fn words(text: &str) -> u32 {
    text.split_whitespace().count() as u32
}

async fn completions(
    State((script, seen)): State<(Script, Seen)>,
    body: axum::body::Bytes,
) -> Response {
    let request: CompletionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")),
    };
    let last_user = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| m.content.clone())
        .unwrap_or_default();
    let system = request
        .messages
        .iter()
        .filter(|m| m.role == "system")
        .filter_map(|m| m.content.as_deref())
        .collect::<Vec<_>>()
        .join("\n");
    let mut fault = marker(&last_user, "fault");
    if last_user.contains("[[flaky]]") {
        let key = format!("{}|{}", request.response_format.is_some(), last_user);
        if seen.lock().map(|mut s| s.insert(key)).unwrap_or(false) {
            fault = Some("cut");
        }
    }
    let slow = marker(&last_user, "slow")
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    tokio::time::sleep(slow.unwrap_or(script.first_byte)).await;
    match fault {
        Some("500") => return error(StatusCode::INTERNAL_SERVER_ERROR, "scripted server error"),
        Some("429") => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "scripted rate limit");
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return r;
        }
        Some("timeout") => tokio::time::sleep(Duration::from_secs(60)).await,
        _ => {}
    }
    let json_mode = request
        .response_format
        .as_ref()
        .is_some_and(|f| f.kind == "json_object");
    let assessing = json_mode && system.starts_with(ASSESSMENT);
    if assessing && marker(&last_user, "assessment") == Some("500") {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "scripted assessment error",
        );
    }
    let content = if assessing {
        if marker(&last_user, "assessment") == Some("malformed") {
            "The learner did rather well, I would say.".to_string()
        } else {
            assessment(&last_user).to_string()
        }
    } else if json_mode {
        analysis(&last_user).to_string()
    } else {
        // How many earlier turns reached the model, so tests can see the window.
        let earlier = request
            .messages
            .iter()
            .filter(|m| m.role == "user" || m.role == "assistant")
            .count()
            .saturating_sub(1);
        reply(&system, &last_user, earlier)
    };
    let prompt_tokens: u32 = request
        .messages
        .iter()
        .filter_map(|m| m.content.as_deref())
        .map(words)
        .sum();
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": words(&content),
        "total_tokens": prompt_tokens + words(&content),
    });
    let model = request.model.unwrap_or_else(|| MODEL.to_string());
    if !request.stream {
        return Json(json!({
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": usage,
        }))
        .into_response();
    }
    let include_usage = request.stream_options.is_some_and(|o| o.include_usage)
        && marker(&last_user, "usage") != Some("none");
    stream(script, model, content, usage, include_usage, fault)
}

/// The answer as SSE `chat.completion.chunk` events, one per word.
fn stream(
    script: Script,
    model: String,
    content: String,
    usage: Value,
    include_usage: bool,
    fault: Option<&str>,
) -> Response {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0,
                   "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let pieces: Vec<String> = content.split_inclusive(' ').map(str::to_string).collect();
    let half = pieces.len() / 2;
    for (i, piece) in pieces.into_iter().enumerate() {
        if i == half && fault == Some("malformed") {
            events.push("data: {\"choices\": [{\"delta\": {\"content\": \"oops\"\n\n".to_string());
        }
        if i == half && fault == Some("cut") {
            // A connection that dies mid-answer: what was sent stays sent, then the body
            // errors, so the connection is dropped without a proper end.
            return sse(script, events, true);
        }
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    if include_usage {
        events.push(format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0,
                   "model": model, "choices": [], "usage": usage})
        ));
    }
    events.push("data: [DONE]\n\n".to_string());
    sse(script, events, false)
}

fn sse(script: Script, events: Vec<String>, cut: bool) -> Response {
    let delay = script.between_chunks;
    let mut items: Vec<Result<String, std::io::Error>> = events.into_iter().map(Ok).collect();
    if cut {
        items.push(Err(std::io::Error::other("scripted cut")));
    }
    let body = futures_util::stream::unfold(items.into_iter(), move |mut rest| async move {
        let next = rest.next()?;
        if next.is_err() {
            // Let what came before reach the client first, as it would before a real drop.
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((next, rest))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not build the stream",
            )
        })
}

/// The level named in a system prompt (`level B1`), if any.
fn level_in(system: &str) -> Option<&str> {
    let at = system.find("level ")? + "level ".len();
    let code = system.get(at..at + 2)?;
    let mut chars = code.chars();
    matches!(chars.next(), Some('A' | 'B' | 'C'))
        .then_some(())
        .and(matches!(chars.next(), Some('1' | '2')).then_some(code))
}

fn reply(system: &str, said: &str, earlier: usize) -> String {
    let level = level_in(system).unwrap_or("unknown");
    let said = said.trim();
    format!(
        "(penpal-scripted, level {level}) Merci ! Tu as écrit : « {said} ». Et ensuite, qu'est-ce que tu as fait ? [history: {earlier}]"
    )
}

/// Classic French learner errors the scripted analysis recognises.
const CORRECTIONS: &[(&str, &str, &str, &str)] = &[
    ("à le", "au", "À + le se contracte en « au ».", "grammar"),
    ("de le", "du", "De + le se contracte en « du ».", "grammar"),
    (
        "je va",
        "je vais",
        "Aller à la première personne : « je vais ».",
        "grammar",
    ),
    (
        "j'ai allé",
        "je suis allé",
        "Aller se conjugue avec être au passé composé.",
        "grammar",
    ),
    (
        "mon amis",
        "mes amis",
        "Le pluriel demande « mes ».",
        "grammar",
    ),
    (
        "cinema",
        "cinéma",
        "Cinéma prend un accent aigu.",
        "spelling",
    ),
];

fn analysis(said: &str) -> Value {
    let lower = said.to_lowercase();
    let corrections: Vec<Value> = CORRECTIONS
        .iter()
        .filter_map(|(wrong, right, why, category)| {
            let at = lower.find(wrong)?;
            let original = said.get(at..at + wrong.len())?;
            Some(json!({"original": original, "corrected": right, "explanation": why, "category": category}))
        })
        .collect();
    let longest = said
        .split(|c: char| !c.is_alphabetic() && c != '\'')
        .filter(|w| w.chars().count() >= 6)
        .max_by_key(|w| w.chars().count());
    let vocabulary: Vec<Value> = longest
        .map(|w| json!({"term": w.to_lowercase(), "translation": format!("({w}: scripted translation)"), "example": format!("J'utilise « {} » tous les jours.", w.to_lowercase())}))
        .into_iter()
        .collect();
    let level = match words(said) {
        0..=4 => "A1",
        5..=9 => "A2",
        10..=19 => "B1",
        _ => "B2",
    };
    json!({
        "corrections": corrections,
        "vocabulary": vocabulary,
        "level": {"observed": level, "confidence": 0.6},
    })
}

/// How an assessment request's system prompt starts (see `lms::rubric::request`).
const ASSESSMENT: &str = "You assess a language learner's";

/// A rubric assessment of a transcript (`Learner: …` / `Tutor: …` lines), worked out so a
/// test can predict it: task completion is the learner's turns (at most 4); accuracy 4 less
/// the known errors; range the learner's different words of six letters or more (at most 4);
/// fluency from the words per turn.
fn assessment(transcript: &str) -> Value {
    let said: Vec<&str> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix("Learner: "))
        .collect();
    let errors: usize = said
        .iter()
        .map(|l| {
            let lower = l.to_lowercase();
            CORRECTIONS
                .iter()
                .filter(|(wrong, ..)| lower.contains(wrong))
                .count()
        })
        .sum();
    let long: std::collections::BTreeSet<String> = said
        .iter()
        .flat_map(|l| l.split(|c: char| !c.is_alphabetic()))
        .filter(|w| w.chars().count() >= 6)
        .map(str::to_lowercase)
        .collect();
    let per_turn = said.iter().map(|l| words(l)).sum::<u32>() / (said.len().max(1) as u32);
    let fluency = match per_turn {
        0..=2 => 1,
        3..=5 => 2,
        6..=9 => 3,
        _ => 4,
    };
    json!({
        "task_completion": {"score": said.len().min(4), "reason": format!("scripted: {} learner turns", said.len())},
        "accuracy": {"score": 4 - errors.min(4), "reason": format!("scripted: {errors} known errors")},
        "range": {"score": long.len().min(4), "reason": format!("scripted: {} long words", long.len())},
        "fluency": {"score": fluency, "reason": format!("scripted: {per_turn} words per turn")},
        "summary": "(penpal-scripted) A scripted assessment.",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_levels_are_read() {
        assert_eq!(marker("hi [[fault:cut]] there", "fault"), Some("cut"));
        assert_eq!(marker("hi [[slow:250]]", "slow"), Some("250"));
        assert_eq!(marker("hi", "fault"), None);
        assert_eq!(level_in("a learner at CEFR level B2 whose"), Some("B2"));
        assert_eq!(level_in("level Z9"), None);
    }

    #[test]
    fn analysis_corrects_known_errors_where_they_are() {
        let a = analysis("Hier je suis allé À le marché");
        assert_eq!(a["corrections"][0]["original"], "À le");
        assert_eq!(a["corrections"][0]["corrected"], "au");
        assert_eq!(a["vocabulary"][0]["term"], "marché");
        assert_eq!(a["level"]["observed"], "A2");
    }
}
