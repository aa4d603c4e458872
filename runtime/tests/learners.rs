//! The learner's product end to end, on a real server (loopback port, `mem://` SurrealDB, the
//! first-party tutor plugins, the scripted model over HTTP): accounts, profile, conversations,
//! the live socket, memory, vocabulary review, export and deletion.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

/// An HTTP client for one learner.
struct Learner {
    http: reqwest::Client,
    base: String,
    token: String,
    refresh: String,
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

async fn call(http: &reqwest::Client, method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = http.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = within(60, url, req.send()).await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

impl Learner {
    async fn register(server: &Running, email: &str) -> Learner {
        let http = http();
        let (status, body) = call(&http, "POST", &server.url("/v1/auth/register"), None,
            Some(json!({"email": email, "password": "correct horse battery", "display_name": "Ana"}))).await;
        assert_eq!(status, 201, "{body}");
        Learner {
            http,
            base: server.url(""),
            token: body["access_token"].as_str().unwrap().into(),
            refresh: body["refresh_token"].as_str().unwrap().into(),
        }
    }

    async fn req(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.http, method, &format!("{}{path}", self.base), Some(&self.token), body).await
    }

    async fn onboard(&self, level: &str) {
        let (status, body) = self
            .req("PATCH", "/v1/me/profile", Some(json!({
                "native_language": "en",
                "targets": [{"language": "fr", "level": level}],
                "goals": ["travel"], "interests": ["cooking"],
                "correction_intensity": "every_error"
            })))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["onboarded"], true);
    }

    async fn conversation(&self) -> String {
        let (status, body) = self.req("POST", "/v1/conversations", Some(json!({"mode": "tutor", "topic": "weekend"}))).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Running, learner: &Learner, conv: &str, after: Option<i64>) -> Socket {
    let (status, body) = learner.req("POST", &format!("/v1/conversations/{conv}/live-ticket"), None).await;
    assert_eq!(status, 201, "{body}");
    let ticket = body["ticket"].as_str().unwrap();
    let mut url = server.ws(&format!("/v1/conversations/{conv}/live?ticket={ticket}"));
    if let Some(a) = after {
        url.push_str(&format!("&after={a}"));
    }
    let (mut ws, _) = within(10, "socket connects", tokio_tungstenite::connect_async(url)).await.unwrap();
    let hello = next_event(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    ws
}

async fn next_event(ws: &mut Socket) -> Value {
    within(30, "a socket event", async {
        loop {
            match ws.next().await.expect("socket open").expect("frame") {
                Ws::Text(t) => return serde_json::from_str(&t).unwrap(),
                Ws::Close(c) => panic!("socket closed: {c:?}"),
                _ => {}
            }
        }
    })
    .await
}

/// Events until (and including) the first of type `until`.
async fn events_until(ws: &mut Socket, until: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let e = next_event(ws).await;
        let done = until.contains(&e["type"].as_str().unwrap_or_default());
        out.push(e);
        if done {
            return out;
        }
    }
}

async fn say(ws: &mut Socket, text: &str) {
    ws.send(Ws::Text(json!({"type": "message", "text": text}).to_string().into())).await.unwrap();
}

#[actix_rt::test]
async fn the_whole_learner_journey() {
    let data = tempfile::tempdir().unwrap();
    let server = start(serve_args(data.path(), None)).await;
    let ana = Learner::register(&server, "ana@example.com").await;
    ana.onboard("B1").await;
    let conv = ana.conversation().await;

    // Chat over the socket: the reply streams as deltas, then the corrections arrive.
    let mut ws = connect(&server, &ana, &conv, None).await;
    say(&mut ws, "Hier je suis allé à le marché avec mon amis").await;
    let events = events_until(&mut ws, &["turn.complete", "turn.error"]).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"message.accepted"), "{kinds:?}");
    let deltas: Vec<&Value> = events.iter().filter(|e| e["type"] == "turn.delta").collect();
    assert!(deltas.len() > 3, "the reply arrives in pieces: {kinds:?}");
    let streamed: String = deltas.iter().map(|d| d["text"].as_str().unwrap()).collect();
    let done = events.last().unwrap();
    assert_eq!(done["type"], "turn.complete", "{done}");
    assert_eq!(done["reply"]["text"], streamed.as_str(), "the stored reply is what streamed");
    assert!(streamed.contains("level B1"), "the profile's level reached the model: {streamed}");
    let originals: Vec<&str> = done["corrections"].as_array().unwrap().iter().map(|c| c["original"].as_str().unwrap()).collect();
    assert!(originals.contains(&"à le") && originals.contains(&"mon amis"), "{originals:?}");
    assert_eq!(done["learner"]["status"], "answered");

    // A level change shows in the very next reply.
    let (status, _) = ana.req("PATCH", "/v1/me/profile", Some(json!({"targets": [{"language": "fr", "level": "C1"}]}))).await;
    assert_eq!(status, 200);
    say(&mut ws, "Je voudrais parler de cuisine maintenant").await;
    let done = events_until(&mut ws, &["turn.complete", "turn.error"]).await.pop().unwrap();
    assert!(done["reply"]["text"].as_str().unwrap().contains("level C1"), "{done}");

    // A second tab joins and sees the same stream.
    let mut tab2 = connect(&server, &ana, &conv, None).await;
    say(&mut ws, "Le weekend dernier, je va au cinema").await;
    let first = events_until(&mut ws, &["turn.complete"]).await.pop().unwrap();
    let second = events_until(&mut tab2, &["turn.complete"]).await.pop().unwrap();
    assert_eq!(first["reply"], second["reply"]);
    drop(tab2);

    // Reconnect and read what was missed, and the history.
    drop(ws);
    let mut ws = connect(&server, &ana, &conv, Some(2)).await;
    let replayed = events_until(&mut ws, &["message"]).await;
    assert_eq!(replayed.last().unwrap()["seq"], 3);
    let (status, page) = ana.req("GET", &format!("/v1/conversations/{conv}/messages?limit=4"), None).await;
    assert_eq!(status, 200);
    let seqs: Vec<i64> = page["items"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![3, 4, 5, 6]);
    let (_, older) = ana.req("GET", &format!("/v1/conversations/{conv}/messages?before={}", page["next_cursor"].as_str().unwrap()), None).await;
    assert_eq!(older["items"][0]["seq"], 1);
    assert_eq!(older["items"][0]["corrections"][0]["corrected"], "au");

    // Context: view, pin, reset.
    let (status, ctx) = ana.req("POST", &format!("/v1/conversations/{conv}/context"), Some(json!({"pin": "Ana is vegetarian"}))).await;
    assert_eq!(status, 201, "{ctx}");
    assert_eq!(ctx["pinned"][0], "Ana is vegetarian");
    assert_eq!(ctx["window"].as_array().unwrap().len(), 6);
    let (_, ctx) = ana.req("DELETE", &format!("/v1/conversations/{conv}/context"), None).await;
    assert_eq!(ctx["pinned"].as_array().unwrap().len(), 0);
    assert_eq!(ctx["window"].as_array().unwrap().len(), 0, "the tutor forgot the turns: {ctx}");

    // Vocabulary: due cards, a review pushes the card into the future, CSV for Anki.
    let (_, cards) = ana.req("GET", "/v1/vocabulary?due=true", None).await;
    let cards = cards.as_array().unwrap().clone();
    assert!(cards.iter().any(|c| c["term"] == "marché"), "{cards:?}");
    let id = cards[0]["id"].as_str().unwrap();
    let (status, reviewed) = ana.req("POST", &format!("/v1/vocabulary/{id}/review"), Some(json!({"grade": "good"}))).await;
    assert_eq!(status, 200, "{reviewed}");
    assert_eq!(reviewed["reps"], 1);
    let (_, due) = ana.req("GET", "/v1/vocabulary?due=true", None).await;
    assert_eq!(due.as_array().unwrap().len(), cards.len() - 1);
    let (status, csv) = ana.req("GET", "/v1/vocabulary/export.csv", None).await;
    assert_eq!(status, 200);
    assert!(csv.as_str().unwrap().starts_with("#separator:comma"), "{csv}");
    assert!(csv.as_str().unwrap().contains("marché,"), "{csv}");

    // Progress.
    let (_, p) = ana.req("GET", "/v1/me/progress", None).await;
    assert_eq!(p["messages"], 3);
    assert_eq!(p["streak_days"], 1);
    assert!(p["errors_by_category"]["grammar"].as_i64().unwrap() >= 3, "{p}");

    // Export, then delete: afterwards nothing answers for the account.
    let (status, export) = ana.req("GET", "/v1/me/export", None).await;
    assert_eq!(status, 200);
    assert_eq!(export["account"]["email"], "ana@example.com");
    assert!(export["account"].get("password_hash").is_none());
    assert_eq!(export["conversations"][0]["messages"].as_array().unwrap().len(), 6);
    let (status, _) = ana.req("DELETE", "/v1/me", Some(json!({"password": "correct horse battery"}))).await;
    assert_eq!(status, 204);
    let (status, _) = call(&ana.http, "POST", &server.url("/v1/auth/login"), None,
        Some(json!({"email": "ana@example.com", "password": "correct horse battery"}))).await;
    assert_eq!(status, 401);
    server.stop().await;
}
