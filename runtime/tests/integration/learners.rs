//! The learner's product end to end, on a real server (loopback port, `mem://` SurrealDB, the
//! first-party tutor plugins, the scripted model over HTTP): accounts, profile, conversations,
//! the live socket, memory, vocabulary review, export and deletion.

use std::time::Duration;

use crate::common::*;
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

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
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
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl Learner {
    async fn register(server: &Running, email: &str) -> Learner {
        let http = http();
        let (status, body) = call(
            &http,
            "POST",
            &server.url("/v1/auth/register"),
            None,
            Some(
                json!({"email": email, "password": "correct horse battery", "display_name": "Ana"}),
            ),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        Learner {
            http,
            base: server.url(""),
            token: body["access_token"].as_str().unwrap().into(),
            refresh: body["refresh_token"].as_str().unwrap().into(),
        }
    }

    async fn req(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(
            &self.http,
            method,
            &format!("{}{path}", self.base),
            Some(&self.token),
            body,
        )
        .await
    }

    async fn onboard(&self, level: &str) {
        let (status, body) = self
            .req(
                "PATCH",
                "/v1/me/profile",
                Some(json!({
                    "native_language": "en",
                    "targets": [{"language": "fr", "level": level}],
                    "goals": ["travel"], "interests": ["cooking"],
                    "correction_intensity": "every_error"
                })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["onboarded"], true);
    }

    async fn conversation(&self) -> String {
        let (status, body) = self
            .req(
                "POST",
                "/v1/conversations",
                Some(json!({"mode": "tutor", "topic": "weekend"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Running, learner: &Learner, conv: &str, after: Option<i64>) -> Socket {
    let (status, body) = learner
        .req(
            "POST",
            &format!("/v1/conversations/{conv}/live-ticket"),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let ticket = body["ticket"].as_str().unwrap();
    let mut url = server.ws(&format!("/v1/conversations/{conv}/live?ticket={ticket}"));
    if let Some(a) = after {
        url.push_str(&format!("&after={a}"));
    }
    let (mut ws, _) = within(10, "socket connects", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
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
    ws.send(Ws::Text(
        json!({"type": "message", "text": text}).to_string().into(),
    ))
    .await
    .unwrap();
}

#[actix_rt::test]
async fn the_whole_learner_journey() {
    let data = tempfile::tempdir().unwrap();
    // The test keeps a handle on the database, to see what deleting the account leaves.
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = start_on(serve_args(data.path(), None), db.clone()).await;
    let ana = Learner::register(&server, "ana@example.com").await;
    ana.onboard("B1").await;
    let conv = ana.conversation().await;

    // Chat over the socket: the reply streams as deltas, then the corrections arrive.
    let mut ws = connect(&server, &ana, &conv, None).await;
    say(&mut ws, "Hier je suis allé à le marché avec mon amis").await;
    let events = events_until(&mut ws, &["turn.complete", "turn.error"]).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"message.accepted"), "{kinds:?}");
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "turn.delta")
        .collect();
    assert!(deltas.len() > 3, "the reply arrives in pieces: {kinds:?}");
    let streamed: String = deltas.iter().map(|d| d["text"].as_str().unwrap()).collect();
    let done = events.last().unwrap();
    assert_eq!(done["type"], "turn.complete", "{done}");
    assert_eq!(
        done["reply"]["text"],
        streamed.as_str(),
        "the stored reply is what streamed"
    );
    assert!(
        streamed.contains("level B1"),
        "the profile's level reached the model: {streamed}"
    );
    let originals: Vec<&str> = done["corrections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["original"].as_str().unwrap())
        .collect();
    assert!(
        originals.contains(&"à le") && originals.contains(&"mon amis"),
        "{originals:?}"
    );
    assert_eq!(done["learner"]["status"], "answered");

    // A level change shows in the very next reply.
    let (status, _) = ana
        .req(
            "PATCH",
            "/v1/me/profile",
            Some(json!({"targets": [{"language": "fr", "level": "C1"}]})),
        )
        .await;
    assert_eq!(status, 200);
    say(&mut ws, "Je voudrais parler de cuisine maintenant").await;
    let done = events_until(&mut ws, &["turn.complete", "turn.error"])
        .await
        .pop()
        .unwrap();
    assert!(
        done["reply"]["text"].as_str().unwrap().contains("level C1"),
        "{done}"
    );
    assert!(
        done["reply"]["text"]
            .as_str()
            .unwrap()
            .ends_with("[history: 2]"),
        "the first turn reached the model with the second: {done}"
    );

    // A second tab joins and sees the same stream.
    let mut tab2 = connect(&server, &ana, &conv, None).await;
    say(&mut ws, "Le weekend dernier, je va au cinema").await;
    let first = events_until(&mut ws, &["turn.complete"])
        .await
        .pop()
        .unwrap();
    let second = events_until(&mut tab2, &["turn.complete"])
        .await
        .pop()
        .unwrap();
    assert_eq!(first["reply"], second["reply"]);
    assert!(
        first["reply"]["text"]
            .as_str()
            .unwrap()
            .ends_with("[history: 4]"),
        "{first}"
    );
    drop(tab2);

    // Reconnect and read what was missed, and the history.
    drop(ws);
    let mut ws = connect(&server, &ana, &conv, Some(2)).await;
    let replayed = events_until(&mut ws, &["message"]).await;
    assert_eq!(replayed.last().unwrap()["seq"], 3);
    let (status, page) = ana
        .req(
            "GET",
            &format!("/v1/conversations/{conv}/messages?limit=4"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let seqs: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 4, 5, 6]);
    let (_, older) = ana
        .req(
            "GET",
            &format!(
                "/v1/conversations/{conv}/messages?before={}",
                page["next_cursor"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(older["items"][0]["seq"], 1);
    assert_eq!(older["items"][0]["corrections"][0]["corrected"], "au");

    // Context: view, pin, reset.
    let (status, ctx) = ana
        .req(
            "POST",
            &format!("/v1/conversations/{conv}/context"),
            Some(json!({"pin": "Ana is vegetarian"})),
        )
        .await;
    assert_eq!(status, 201, "{ctx}");
    assert_eq!(ctx["pinned"][0], "Ana is vegetarian");
    assert_eq!(ctx["window"].as_array().unwrap().len(), 6);
    let (_, ctx) = ana
        .req("DELETE", &format!("/v1/conversations/{conv}/context"), None)
        .await;
    assert_eq!(ctx["pinned"].as_array().unwrap().len(), 0);
    assert_eq!(
        ctx["window"].as_array().unwrap().len(),
        0,
        "the tutor forgot the turns: {ctx}"
    );

    // Vocabulary: due cards, a review pushes the card into the future, CSV for Anki.
    let (_, cards) = ana.req("GET", "/v1/vocabulary?due=true", None).await;
    let cards = cards.as_array().unwrap().clone();
    assert!(cards.iter().any(|c| c["term"] == "marché"), "{cards:?}");
    let id = cards[0]["id"].as_str().unwrap();
    let (status, reviewed) = ana
        .req(
            "POST",
            &format!("/v1/vocabulary/{id}/review"),
            Some(json!({"grade": "good"})),
        )
        .await;
    assert_eq!(status, 200, "{reviewed}");
    assert_eq!(reviewed["reps"], 1);
    let (_, due) = ana.req("GET", "/v1/vocabulary?due=true", None).await;
    assert_eq!(due.as_array().unwrap().len(), cards.len() - 1);
    let (status, csv) = ana.req("GET", "/v1/vocabulary/export.csv", None).await;
    assert_eq!(status, 200);
    assert!(
        csv.as_str().unwrap().starts_with("#separator:comma"),
        "{csv}"
    );
    assert!(csv.as_str().unwrap().contains("marché,"), "{csv}");

    // Progress.
    let (_, p) = ana.req("GET", "/v1/me/progress", None).await;
    assert_eq!(p["messages"], 3);
    assert_eq!(p["streak_days"], 1);
    assert!(
        p["errors_by_category"]["grammar"].as_i64().unwrap() >= 3,
        "{p}"
    );

    // Export, then delete: afterwards nothing answers for the account.
    let (status, export) = ana.req("GET", "/v1/me/export", None).await;
    assert_eq!(status, 200);
    assert_eq!(export["account"]["email"], "ana@example.com");
    assert!(export["account"].get("password_hash").is_none());
    assert_eq!(
        export["conversations"][0]["messages"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    // Every answered turn's model usage is on record, per conversation and purpose.
    let conv_id = export["conversations"][0]["id"].clone();
    let usage = export["usage"].as_array().unwrap();
    for purpose in ["reply", "analysis"] {
        let rows: Vec<&Value> = usage
            .iter()
            .filter(|u| u["purpose"] == purpose && u["conversation"] == conv_id)
            .collect();
        assert_eq!(rows.len(), 3, "{purpose} usage of 3 turns: {usage:?}");
        assert!(rows.iter().all(|u| u["prompt_tokens"].as_i64().unwrap() > 0
            && u["completion_tokens"].as_i64().unwrap() > 0
            && u["model"] == "penpal-scripted"));
    }
    let (_, progress) = ana.req("GET", "/v1/me/progress", None).await;
    assert!(
        progress["usage"]["prompt_tokens"].as_i64().unwrap() > 0,
        "{progress}"
    );
    let (status, _) = ana
        .req(
            "DELETE",
            "/v1/me",
            Some(json!({"password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &ana.http,
        "POST",
        &server.url("/v1/auth/login"),
        None,
        Some(json!({"email": "ana@example.com", "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(status, 401);
    // Ana was the only account: every table she touched (all but the migration record) is
    // empty now — a table a new room adds is checked too.
    let info = db.run("INFO FOR DB", json!({})).await.unwrap();
    let tables: Vec<String> = info[0]["tables"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|t| *t != "migration")
        .cloned()
        .collect();
    assert!(tables.len() >= 8, "{tables:?}");
    for table in tables {
        let rows: Vec<Value> = db
            .rows(&format!("SELECT * FROM {table}"), json!({}))
            .await
            .unwrap();
        assert!(rows.is_empty(), "{table} still holds {rows:?}");
    }
    server.stop().await;
}

async fn login(server: &Running, email: &str, password: &str) -> (u16, Value) {
    call(
        &http(),
        "POST",
        &server.url("/v1/auth/login"),
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

/// The server the token tests run against: its JWT key is known, so a test can forge with
/// another one and sign an expired token with this one.
const TEST_JWT_KEY: &str = "a-test-secret-of-at-least-32-bytes!!";

async fn token_server(data: &std::path::Path) -> Running {
    let mut args = serve_args(data, None);
    args.app.jwt_secret = Some(penpal::plugins::Secret::new(TEST_JWT_KEY));
    start(args).await
}

#[actix_rt::test]
async fn refresh_tokens_rotate_and_a_reused_one_ends_the_whole_family() {
    let data = tempfile::tempdir().unwrap();
    let server = token_server(data.path()).await;
    let ana = Learner::register(&server, "ana@example.com").await;
    let url = server.url("/v1/auth/refresh");
    // Rotation: each refresh token works once and yields a new one.
    let (status, first) = call(
        &ana.http,
        "POST",
        &url,
        None,
        Some(json!({"refresh_token": ana.refresh})),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_ne!(first["refresh_token"], ana.refresh.as_str());
    let (status, second) = call(
        &ana.http,
        "POST",
        &url,
        None,
        Some(json!({"refresh_token": first["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 200);
    // Reuse of a spent token ends the whole family, including the newest token.
    let (status, body) = call(
        &ana.http,
        "POST",
        &url,
        None,
        Some(json!({"refresh_token": ana.refresh})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("refresh_reused"))
    );
    let (status, _) = call(
        &ana.http,
        "POST",
        &url,
        None,
        Some(json!({"refresh_token": second["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 401, "the thief's fresh token is dead too");
    let (status, body) = call(
        &ana.http,
        "GET",
        &server.url("/v1/me"),
        second["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("session_revoked"))
    );

    server.stop().await;
}

#[actix_rt::test]
async fn expired_forged_and_unsigned_access_tokens_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let server = token_server(data.path()).await;
    let ana = Learner::register(&server, "ana@example.com").await;
    let ana_id = ana_id(&ana).await;
    // Expired, forged and `alg: none` tokens.
    let now = penpal::store::now_ms() / 1000;
    let claims = json!({"sub": ana_id, "role": "learner", "fam": "x", "iat": now - 3600, "exp": now - 600, "iss": "penpal", "aud": "penpal-api"});
    let key = jsonwebtoken::EncodingKey::from_secret(TEST_JWT_KEY.as_bytes());
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let (status, body) = call(
        &ana.http,
        "GET",
        &server.url("/v1/me"),
        Some(&expired),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_expired"))
    );
    let mut fresh = claims.clone();
    fresh["exp"] = json!(now + 600);
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &fresh,
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-server-key-not-the-server"),
    )
    .unwrap();
    let (status, body) = call(&ana.http, "GET", &server.url("/v1/me"), Some(&forged), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_token"))
    );
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&fresh)
    );
    let (status, _) = call(&ana.http, "GET", &server.url("/v1/me"), Some(&none), None).await;
    assert_eq!(status, 401);
    let (status, body) = call(&ana.http, "GET", &server.url("/v1/me"), None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );

    server.stop().await;
}

#[actix_rt::test]
async fn failed_logins_are_throttled_with_retry_after_and_successful_ones_never() {
    let data = tempfile::tempdir().unwrap();
    let server = token_server(data.path()).await;
    let _ana = Learner::register(&server, "ana@example.com").await;
    // Failed logins are throttled with Retry-After; successful ones never are.
    for _ in 0..3 {
        assert_eq!(
            login(&server, "ana@example.com", "correct horse battery")
                .await
                .0,
            200
        );
    }
    for _ in 0..5 {
        assert_eq!(
            login(&server, "ana@example.com", "wrong horse battery")
                .await
                .0,
            401
        );
    }
    let resp = http()
        .post(server.url("/v1/auth/login"))
        .json(&json!({"email": "ana@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429, "even the right password waits");
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait));

    server.stop().await;
}

#[actix_rt::test]
async fn another_learners_conversations_do_not_exist_for_you() {
    let data = tempfile::tempdir().unwrap();
    let server = token_server(data.path()).await;
    // Another learner's conversation does not exist for you.
    let ana = Learner::register(&server, "ana2@example.com").await;
    ana.onboard("A2").await;
    let conv = ana.conversation().await;
    let ben = Learner::register(&server, "ben@example.com").await;
    for (method, path) in [
        ("GET", format!("/v1/conversations/{conv}")),
        ("GET", format!("/v1/conversations/{conv}/messages")),
        ("GET", format!("/v1/conversations/{conv}/context")),
        ("DELETE", format!("/v1/conversations/{conv}")),
        ("POST", format!("/v1/conversations/{conv}/live-ticket")),
    ] {
        let (status, body) = ben.req(method, &path, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (_, list) = ben.req("GET", "/v1/conversations", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    server.stop().await;
}

#[actix_rt::test]
async fn logout_ends_the_session_and_a_password_change_ends_the_others() {
    let data = tempfile::tempdir().unwrap();
    let server = token_server(data.path()).await;
    let ana = Learner::register(&server, "ana2@example.com").await;
    let ben = Learner::register(&server, "ben@example.com").await;
    let url = server.url("/v1/auth/refresh");
    // Logout ends the session at once; a password change ends the others.
    let (status, _) = ana.req("POST", "/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    assert_eq!(ana.req("GET", "/v1/me", None).await.0, 401);
    let (_, a) = login(&server, "ben@example.com", "correct horse battery").await;
    let (status, _) = ben.req("POST", "/v1/auth/password", Some(json!({"current_password": "correct horse battery", "new_password": "a new battery staple"}))).await;
    assert_eq!(status, 204);
    assert_eq!(
        ben.req("GET", "/v1/me", None).await.0,
        200,
        "the session that changed it stays"
    );
    let (status, _) = call(
        &ben.http,
        "POST",
        &url,
        None,
        Some(json!({"refresh_token": a["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 401, "the other session ended");
    assert_eq!(
        login(&server, "ben@example.com", "a new battery staple")
            .await
            .0,
        200
    );
    server.stop().await;
}

async fn ana_id(l: &Learner) -> String {
    l.req("GET", "/v1/me", None).await.1["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[actix_rt::test]
async fn model_faults_end_the_turn_with_a_retryable_error_and_keep_the_message() {
    let data = tempfile::tempdir().unwrap();
    let mut args = serve_args(data.path(), None);
    args.llm.llm_timeout_ms = 1500;
    args.llm.llm_retries = 0;
    let server = start(args).await;
    let ana = Learner::register(&server, "ana@example.com").await;
    ana.onboard("B1").await;
    let conv = ana.conversation().await;
    let mut ws = connect(&server, &ana, &conv, None).await;
    let mut seq = 0;
    for fault in ["500", "timeout", "malformed", "cut"] {
        let text = format!("Bonjour [[fault:{fault}]]");
        say(&mut ws, &text).await;
        let events = events_until(&mut ws, &["turn.complete", "turn.error"]).await;
        let end = events.last().unwrap();
        assert_eq!(end["type"], "turn.error", "{fault}: {events:?}");
        assert_eq!(end["retryable"], true, "{fault}");
        // A fixed message and a support id; what the model said stays in the logs.
        assert_eq!(end["code"], "llm_unavailable", "{fault}");
        assert_eq!(
            end["message"],
            "the tutor could not answer right now; your message is saved — try again"
        );
        assert!(
            end["support_id"].as_str().is_some_and(|s| s.len() == 12),
            "{end}"
        );
        seq = end["seq"].as_i64().unwrap();
        let (_, page) = ana
            .req("GET", &format!("/v1/conversations/{conv}/messages"), None)
            .await;
        let kept = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["seq"] == seq)
            .cloned()
            .unwrap();
        assert_eq!(
            (kept["text"].as_str(), kept["status"].as_str()),
            (Some(text.as_str()), Some("failed")),
            "{fault}"
        );
        assert_eq!(
            kept["error"], "llm_unavailable",
            "only the code is stored: {kept}"
        );
    }
    // Only the newest failed message can be retried; a flaky model answers the second time.
    ws.send(Ws::Text(
        json!({"type": "retry", "seq": 1}).to_string().into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_event(&mut ws).await["code"], "not_retryable");
    let _ = seq;
    say(&mut ws, "Je suis allé à le marché [[flaky]]").await;
    let end = events_until(&mut ws, &["turn.complete", "turn.error"])
        .await
        .pop()
        .unwrap();
    assert_eq!(end["type"], "turn.error", "{end}");
    let failed = end["seq"].as_i64().unwrap();
    ws.send(Ws::Text(
        json!({"type": "retry", "seq": failed}).to_string().into(),
    ))
    .await
    .unwrap();
    let end = events_until(&mut ws, &["turn.complete", "turn.error"])
        .await
        .pop()
        .unwrap();
    assert_eq!(end["type"], "turn.complete", "{end}");
    assert_eq!(end["learner"]["seq"], failed);
    assert_eq!(end["learner"]["status"], "answered");
    let reply = |end: &Value| end["reply"]["text"].as_str().unwrap().to_string();
    assert!(
        reply(&end).ends_with("[history: 0]"),
        "failed messages never reach the model: {end}"
    );
    say(&mut ws, "Et maintenant, on parle de quoi ?").await;
    let end = events_until(&mut ws, &["turn.complete", "turn.error"])
        .await
        .pop()
        .unwrap();
    assert!(
        reply(&end).ends_with("[history: 2]"),
        "the retried turn, now answered, does: {end}"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn bad_input_gets_a_clear_4xx_or_error_event_and_never_hurts_others() {
    let data = tempfile::tempdir().unwrap();
    let server = start(serve_args(data.path(), None)).await;
    let ana = Learner::register(&server, "ana@example.com").await;
    ana.onboard("A2").await;
    let conv = ana.conversation().await;
    let ben = Learner::register(&server, "ben@example.com").await;
    ben.onboard("A2").await;
    let ben_conv = ben.conversation().await;
    let mut bens = connect(&server, &ben, &ben_conv, None).await;

    let cases = [
        (
            "PATCH",
            "/v1/me/profile".to_string(),
            json!({"targets": [{"language": "klingon", "level": "B1"}]}),
            422,
            "targets",
        ),
        (
            "PATCH",
            "/v1/me/profile".to_string(),
            json!({"targets": [{"language": "fr", "level": "Z9"}]}),
            400,
            "",
        ),
        (
            "PATCH",
            "/v1/me/profile".to_string(),
            json!({"shoe_size": 42}),
            400,
            "",
        ),
        (
            "POST",
            "/v1/conversations".to_string(),
            json!({"language": "xx"}),
            422,
            "language",
        ),
        (
            "POST",
            "/v1/conversations".to_string(),
            json!({"mode": "role-play", "scenario": "moon-landing"}),
            422,
            "scenario",
        ),
        (
            "POST",
            format!("/v1/conversations/{conv}/messages"),
            json!({"text": "é".repeat(4001)}),
            422,
            "text",
        ),
        (
            "POST",
            format!("/v1/conversations/{conv}/messages"),
            json!({"text": "   "}),
            422,
            "text",
        ),
        (
            "POST",
            "/v1/auth/register".to_string(),
            json!({"email": "not-an-email", "password": "correct horse battery"}),
            422,
            "email",
        ),
        (
            "POST",
            "/v1/auth/register".to_string(),
            json!({"email": "c@example.com", "password": "short"}),
            422,
            "password",
        ),
        (
            "POST",
            "/v1/auth/register".to_string(),
            json!({"email": "ana@example.com", "password": "correct horse battery"}),
            409,
            "",
        ),
    ];
    for (method, path, body, status, field) in cases {
        let (got, answer) = ana.req(method, &path, Some(body.clone())).await;
        assert_eq!(got, status, "{method} {path} {body}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], field, "{answer}");
        }
    }
    // Malformed JSON and an oversized body.
    let resp = ana
        .http
        .post(server.url("/v1/conversations"))
        .bearer_auth(&ana.token)
        .header("content-type", "application/json")
        .body("{\"mode\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "bad_request"
    );
    let resp = ana
        .http
        .post(server.url("/v1/conversations"))
        .bearer_auth(&ana.token)
        .header("content-type", "application/json")
        .body(format!("{{\"topic\": \"{}\"}}", "a".repeat(100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);

    // Bad socket frames get an error event; the socket stays open, and others never notice.
    let mut ws = connect(&server, &ana, &conv, None).await;
    for frame in [
        "not json",
        "{\"type\": \"shout\"}",
        &json!({"type": "message", "text": "x".repeat(4001)}).to_string(),
    ] {
        ws.send(Ws::Text(frame.to_string().into())).await.unwrap();
        let e = next_event(&mut ws).await;
        assert_eq!(e["type"], "error", "{frame}: {e}");
    }
    ws.send(Ws::Binary(vec![0, 1, 2].into())).await.unwrap();
    assert_eq!(next_event(&mut ws).await["code"], "bad_frame");
    ws.send(Ws::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_event(&mut ws).await["type"], "pong");
    say(&mut bens, "Bonjour, je m'appelle Ben").await;
    let end = events_until(&mut bens, &["turn.complete", "turn.error"])
        .await
        .pop()
        .unwrap();
    assert_eq!(end["type"], "turn.complete");
    // A second message while a turn runs is refused, not raced.
    say(&mut ws, "Bonjour [[slow:800]]").await;
    say(&mut ws, "Encore").await;
    let events = events_until(&mut ws, &["turn.complete"]).await;
    assert!(
        events.iter().any(|e| e["code"] == "turn_in_progress"),
        "{events:?}"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn simple_clients_post_for_the_whole_reply_or_stream_it_as_sse() {
    let data = tempfile::tempdir().unwrap();
    let server = start(serve_args(data.path(), None)).await;
    let ana = Learner::register(&server, "ana@example.com").await;
    ana.onboard("B2").await;
    let conv = ana.conversation().await;
    let (status, turn) = ana
        .req(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(json!({"text": "Je va au cinema ce soir"})),
        )
        .await;
    assert_eq!(status, 201, "{turn}");
    assert!(turn["reply"]["text"].as_str().unwrap().contains("level B2"));
    assert_eq!(turn["corrections"].as_array().unwrap().len(), 2, "{turn}");

    let resp = ana
        .http
        .post(server.url(&format!("/v1/conversations/{conv}/messages")))
        .bearer_auth(&ana.token)
        .header("accept", "text/event-stream")
        .json(&json!({"text": "Et toi, tu aimes le cinéma ?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "as for the whole reply");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = within(30, "the SSE stream ends", resp.text())
        .await
        .unwrap();
    let names: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message.accepted"), "{body}");
    assert!(
        names.iter().filter(|n| **n == "turn.delta").count() > 3,
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"turn.complete"));

    // Conversations: newest first, in pages; renamed and archived ones move as expected.
    let mut ids = vec![conv.clone()];
    for topic in ["food", "films"] {
        let (status, c) = ana
            .req(
                "POST",
                "/v1/conversations",
                Some(json!({"mode": "conversation", "topic": topic})),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        assert_eq!(c["personality"], "partner");
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    let (_, page) = ana.req("GET", "/v1/conversations?limit=2", None).await;
    let first: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, vec![ids[2].as_str(), ids[1].as_str()]);
    let (_, next) = ana
        .req(
            "GET",
            &format!(
                "/v1/conversations?limit=2&cursor={}",
                page["next_cursor"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(next["items"][0]["id"], ids[0].as_str());
    assert!(next.get("next_cursor").is_none());
    let (status, renamed) = ana
        .req(
            "PATCH",
            &format!("/v1/conversations/{}", ids[1]),
            Some(json!({"title": "Cuisine", "archived": true})),
        )
        .await;
    assert_eq!((status, renamed["title"].as_str()), (200, Some("Cuisine")));
    let (_, active) = ana.req("GET", "/v1/conversations", None).await;
    assert_eq!(active["items"].as_array().unwrap().len(), 2);
    let (_, archived) = ana
        .req("GET", "/v1/conversations?archived=true", None)
        .await;
    assert_eq!(archived["items"][0]["title"], "Cuisine");
    let (status, _) = ana
        .req("DELETE", &format!("/v1/conversations/{}", ids[2]), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        ana.req("GET", &format!("/v1/conversations/{}", ids[2]), None)
            .await
            .0,
        404
    );
    let (status, body) = ana
        .req("GET", "/v1/conversations?cursor=garbage", None)
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("cursor"))
    );

    // The free demo: no account, a server-side limit per client.
    let mut last = 0;
    for i in 0..11 {
        let (status, body) = call(
            &http(),
            "POST",
            &server.url("/v1/demo/chat"),
            None,
            Some(json!({"message": "Je va à le parc"})),
        )
        .await;
        last = status;
        if i < 10 {
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["scripted_model"], true);
            assert_eq!(body["remaining"], 9 - i);
            assert!(!body["corrections"].as_array().unwrap().is_empty());
        }
    }
    assert_eq!(last, 429);

    // The API describes itself, and says what it runs on.
    let (status, doc) = call(&http(), "GET", &server.url("/openapi.json"), None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/auth/login",
        "/v1/conversations/{id}/messages",
        "/v1/conversations/{id}/live",
        "/v1/vocabulary/{id}/review",
        "/v1/demo/chat",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    let (_, version) = call(&http(), "GET", &server.url("/v1/version"), None, None).await;
    // Public: what runs, not where its model or database lives (that is the operator's).
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    assert!(version.get("llm").is_none() && version.get("database").is_none());
    assert_ne!(version["git_commit"], "");
    let (status, ready) = call(&http(), "GET", &server.url("/readyz"), None, None).await;
    assert_eq!((status, ready["database"].as_str()), (200, Some("ok")));
    server.stop().await;
}

#[actix_rt::test]
async fn memory_is_compressed_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = Process::start(data.path(), &[("PENPAL_CONTEXT_TOKENS", "100")]).await;
    let client = http();
    let (status, body) = call(
        &client,
        "POST",
        &server.url("/v1/auth/register"),
        None,
        Some(json!({"email": "ana@example.com", "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut ana = Learner {
        http: client,
        base: server.url(""),
        token: body["access_token"].as_str().unwrap().into(),
        refresh: String::new(),
    };
    ana.onboard("B1").await;
    let conv = ana.conversation().await;
    let (status, _) = ana
        .req(
            "POST",
            &format!("/v1/conversations/{conv}/context"),
            Some(json!({"pin": "Ana has a dog called Rex"})),
        )
        .await;
    assert_eq!(status, 201);
    for text in [
        "Mon chien s'appelle Rex et il adore courir",
        "Nous habitons à Lyon depuis trois ans",
        "Je travaille dans une boulangerie le matin",
    ] {
        let (status, body) = ana
            .req(
                "POST",
                &format!("/v1/conversations/{conv}/messages"),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let summary = within(30, "the memory is compressed", async {
        loop {
            let (_, ctx) = ana
                .req("GET", &format!("/v1/conversations/{conv}/context"), None)
                .await;
            if let Some(s) = ctx["summary"].as_str() {
                return s.to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        summary.contains("Rex"),
        "the summary keeps what was said: {summary}"
    );
    server.stop();

    let server = Process::start(data.path(), &[("PENPAL_CONTEXT_TOKENS", "100")]).await;
    let (status, body) = call(
        &ana.http,
        "POST",
        &server.url("/v1/auth/login"),
        None,
        Some(json!({"email": "ana@example.com", "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    ana.base = server.url("");
    ana.token = body["access_token"].as_str().unwrap().into();
    let (_, ctx) = ana
        .req("GET", &format!("/v1/conversations/{conv}/context"), None)
        .await;
    assert_eq!(ctx["summary"].as_str(), Some(summary.as_str()));
    assert_eq!(ctx["pinned"][0], "Ana has a dog called Rex");
    let (status, turn) = ana
        .req(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(json!({"text": "Et toi, tu as un animal ?"})),
        )
        .await;
    assert_eq!(status, 201, "{turn}");
    assert_eq!(turn["learner"]["seq"], 7);
    server.stop();
}

#[actix_rt::test]
async fn recent_turns_offer_a_new_level_that_the_learner_can_accept() {
    let data = tempfile::tempdir().unwrap();
    let mut args = serve_args(data.path(), None);
    args.app.cors_origins = vec!["https://app.example".into()];
    let server = start(args).await;
    let ana = Learner::register(&server, "ana@example.com").await;
    ana.onboard("B2").await;
    let conv = ana.conversation().await;
    // The scripted analysis judges a message of under five words to be A1.
    for text in [
        "Bonjour",
        "Je suis Ana",
        "J'aime le chocolat",
        "Il fait beau",
        "Merci beaucoup",
    ] {
        let (status, _) = ana
            .req(
                "POST",
                &format!("/v1/conversations/{conv}/messages"),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (_, me) = ana.req("GET", "/v1/me", None).await;
    let s = &me["profile"]["level_suggestion"];
    assert_eq!(
        (s["current"].as_str(), s["suggested"].as_str()),
        (Some("B2"), Some("A1")),
        "{me}"
    );
    let (_, p) = ana.req("GET", "/v1/me/progress", None).await;
    assert_eq!(p["level"]["suggestion"]["suggested"], "A1");
    let (status, profile) = ana
        .req(
            "PATCH",
            "/v1/me/profile",
            Some(json!({"accept_level_suggestion": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(profile["targets"][0]["level"], "A1");
    assert!(profile["level_suggestion"].is_null());
    let (_, turn) = ana
        .req(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(json!({"text": "Au revoir"})),
        )
        .await;
    assert!(
        turn["reply"]["text"].as_str().unwrap().contains("level A1"),
        "{turn}"
    );

    // Browsers from the configured origin may call the API; others get no CORS grant.
    let preflight = |origin: &'static str| {
        http()
            .request(reqwest::Method::OPTIONS, server.url("/v1/conversations"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("https://app.example").await.unwrap();
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://app.example")
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    server.stop().await;
}
