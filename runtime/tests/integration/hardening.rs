//! What an attacker tries against the running server, and what a demanding user expects of
//! it: slow and silent connections, floods of sign-ups, forged forwarding headers, password
//! guessing, sessions that must end everywhere, and operator-only details. Each test runs the
//! real server on a loopback port.

use std::time::{Duration, Instant};

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;

const PASSWORD: &str = "correct horse battery";

/// Test settings, and the data directory they use (removed when dropped).
fn args() -> (tempfile::TempDir, penpal::config::ServeArgs) {
    let data = tempfile::tempdir().unwrap();
    let a = serve_args(data.path(), None);
    (data, a)
}

fn trusted(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter()
        .map(|s| penpal::config::parse_network(s).unwrap())
        .collect()
}

/// A request through "the proxy" (the test itself, trusted) for the client `client`.
async fn send(
    server: &Running,
    method: &str,
    path: &str,
    forwarded: Option<&str>,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Option<u64>, Value) {
    let mut req = http().request(method.parse().unwrap(), server.url(path));
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = within(60, path, req.send()).await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let text = resp.text().await.unwrap();
    (
        status,
        retry,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn register(server: &Running, email: &str, forwarded: Option<&str>) -> Value {
    let (status, _, body) = send(
        server,
        "POST",
        "/v1/auth/register",
        forwarded,
        None,
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// A new learner, onboarded, with a conversation: (access token, conversation id).
async fn learner_with_conversation(server: &Running) -> (String, String) {
    let me = register(server, "ana@example.com", None).await;
    let token = me["access_token"].as_str().unwrap().to_string();
    let profile = json!({"native_language": "en", "targets": [{"language": "fr", "level": "A2"}]});
    let (status, _, body) = send(
        server,
        "PATCH",
        "/v1/me/profile",
        None,
        Some(&token),
        Some(profile),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, conv) = send(
        server,
        "POST",
        "/v1/conversations",
        None,
        Some(&token),
        Some(json!({"mode": "tutor"})),
    )
    .await;
    assert_eq!(status, 201, "{conv}");
    (token, conv["id"].as_str().unwrap().to_string())
}

/// Reads until the server closes the connection; how long that took.
async fn closed_within(stream: &mut TcpStream, secs: u64, what: &str) -> Duration {
    let started = Instant::now();
    within(secs, what, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    started.elapsed()
}

#[actix_rt::test]
async fn slow_and_silent_connections_are_closed_and_connections_are_capped() {
    let (_data, mut a) = args();
    a.app.header_timeout_secs = 1;
    a.app.idle_timeout_secs = 2;
    a.app.max_connections = 3;
    let server = start(a).await;

    // Half a request head, then nothing.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let took = closed_within(&mut slow, 10, "a half-sent head is cut off").await;
    assert!(took >= Duration::from_millis(900), "{took:?}");

    // Nothing at all.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let took = closed_within(&mut silent, 10, "a silent connection is closed").await;
    assert!(took >= Duration::from_millis(1900), "{took:?}");

    // A kept-alive connection serves requests, then is closed once idle.
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..3 {
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = within(5, "an answer", kept.read(&mut buf)).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    closed_within(&mut kept, 10, "an idle kept-alive connection is closed").await;

    // At the cap, a new connection waits for a place.
    let held: Vec<TcpStream> =
        futures_util::future::join_all((0..3).map(|_| TcpStream::connect(server.addr)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiting = TcpStream::connect(server.addr).await.unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 512];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buf)).await;
    assert!(early.is_err(), "no answer while three connections are open");
    drop(held);
    let n = within(10, "answered once a place is free", waiting.read(&mut buf))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    server.stop().await;
}

#[actix_rt::test]
async fn sign_ups_are_limited_per_client_and_per_ipv6_64() {
    let (_data, mut a) = args();
    a.app.signups_per_hour = 3;
    a.app.trusted_proxies = trusted(&["127.0.0.1"]);
    let server = start(a).await;
    for i in 0..3 {
        register(&server, &format!("a{i}@example.com"), Some("203.0.113.9")).await;
    }
    let (status, retry, body) = send(
        &server,
        "POST",
        "/v1/auth/register",
        Some("203.0.113.9"),
        None,
        Some(json!({"email": "a4@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    assert!(
        retry.is_some_and(|s| (3000..=3600).contains(&s)),
        "{retry:?}"
    );
    // A client that writes its own address in front of the proxy's gains nothing.
    let (status, ..) = send(
        &server,
        "POST",
        "/v1/auth/register",
        Some("198.51.100.1, 203.0.113.9"),
        None,
        Some(json!({"email": "a5@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 429);
    // Another client signs up as usual; addresses of one IPv6 /64 share an allowance.
    register(&server, "b@example.com", Some("198.51.100.1")).await;
    for i in 1..=3 {
        register(
            &server,
            &format!("v{i}@example.com"),
            Some(&format!("2001:db8:5:6::{i}")),
        )
        .await;
    }
    let (status, ..) = send(
        &server,
        "POST",
        "/v1/auth/register",
        Some("2001:db8:5:6:ffff::1"),
        None,
        Some(json!({"email": "v4@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 429);
    server.stop().await;
}

#[actix_rt::test]
async fn the_demo_limit_holds_against_forged_headers_ipv6_and_many_clients() {
    let (_data, mut a) = args();
    a.app.demo_turns_per_day = 2;
    a.app.demo_budget_per_day = 7;
    a.app.trusted_proxies = trusted(&["127.0.0.1"]);
    let server = start(a).await;
    let demo = |forwarded: String| {
        let server = &server;
        async move {
            send(
                server,
                "POST",
                "/v1/demo/chat",
                Some(&forwarded),
                None,
                Some(json!({"message": "Bonjour"})),
            )
            .await
        }
    };
    // A fresh leftmost address on every request: the proxy's own entry is what counts.
    for i in 0..2 {
        assert_eq!(demo(format!("6.6.6.{i}, 203.0.113.5")).await.0, 200);
    }
    let (status, retry, body) = demo("6.6.6.9, 203.0.113.5".into()).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry.is_some());
    // A fresh address in the same /64.
    for i in 1..=2 {
        assert_eq!(demo(format!("2001:db8:7:7::{i}")).await.0, 200);
    }
    assert_eq!(demo("2001:db8:7:7:abcd::1".into()).await.0, 429);
    // Distinct clients together reach the server's daily budget (7): 4 used, 3 left.
    for i in 0..3 {
        assert_eq!(demo(format!("192.0.2.{i}")).await.0, 200);
    }
    let (status, _, body) = demo("192.0.2.200".into()).await;
    assert_eq!(status, 429);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("closed for today"),
        "{body}"
    );
    server.stop().await;
}

#[actix_rt::test]
async fn password_guessing_is_stopped_without_locking_the_owner_out() {
    let (_data, mut a) = args();
    a.app.trusted_proxies = trusted(&["127.0.0.1"]);
    let server = start(a).await;
    register(&server, "ana@example.com", Some("192.0.2.10")).await;

    // Forty guesses at once from one client: only five are checked.
    let guesses = (0..40).map(|i| {
        send(
            &server,
            "POST",
            "/v1/auth/login",
            Some("198.51.100.66"),
            None,
            Some(json!({"email": "ana@example.com", "password": format!("guess number {i}")})),
        )
    });
    let results = futures_util::future::join_all(guesses).await;
    let checked = results.iter().filter(|r| r.0 == 401).count();
    let refused = results.iter().filter(|r| r.0 == 429).count();
    assert_eq!((checked, refused), (5, 35));
    assert!(results.iter().filter(|r| r.0 == 429).all(|r| r.1.is_some()));

    // The owner, from their own network, signs in; the guesser cannot even with the password.
    let owner = json!({"email": "ana@example.com", "password": PASSWORD});
    let (status, ..) = send(
        &server,
        "POST",
        "/v1/auth/login",
        Some("192.0.2.10"),
        None,
        Some(owner.clone()),
    )
    .await;
    assert_eq!(status, 200);
    let (status, ..) = send(
        &server,
        "POST",
        "/v1/auth/login",
        Some("198.51.100.66"),
        None,
        Some(owner),
    )
    .await;
    assert_eq!(status, 429);
    server.stop().await;
}

/// Waits for the socket's next text event.
async fn next_text<S>(ws: &mut S) -> Option<Value>
where
    S: StreamExt<Item = Result<Ws, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match within(20, "a socket frame", ws.next()).await {
            Some(Ok(Ws::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
            Some(Ok(Ws::Close(frame))) => {
                return Some(json!({"closed": frame.map(|f| u16::from(f.code))}));
            }
            Some(Ok(_)) => {}
            _ => return None,
        }
    }
}

/// Reads events until the socket closes; the close code.
async fn close_code<S>(ws: &mut S) -> (Vec<String>, Option<u16>)
where
    S: StreamExt<Item = Result<Ws, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut types = Vec::new();
    while let Some(event) = next_text(ws).await {
        if let Some(closed) = event.get("closed") {
            return (types, closed.as_u64().map(|c| c as u16));
        }
        types.push(event["type"].as_str().unwrap_or_default().to_string());
    }
    (types, None)
}

#[actix_rt::test]
async fn open_sockets_close_when_their_session_ends() {
    let (_data, a) = args();
    let server = start(a).await;
    let (token, conv) = learner_with_conversation(&server).await;

    // One socket by ticket (as the web app opens it), one by bearer header.
    let (_, _, ticket) = send(
        &server,
        "POST",
        &format!("/v1/conversations/{conv}/live-ticket"),
        None,
        Some(&token),
        None,
    )
    .await;
    let (mut by_ticket, _) = tokio_tungstenite::connect_async(server.ws(&format!(
        "/v1/conversations/{conv}/live?ticket={}",
        ticket["ticket"].as_str().unwrap()
    )))
    .await
    .unwrap();
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        server.ws(&format!("/v1/conversations/{conv}/live")),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut by_bearer, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    for ws in [&mut by_ticket, &mut by_bearer] {
        assert_eq!(next_text(ws).await.unwrap()["type"], "hello");
    }

    let (status, ..) = send(&server, "POST", "/v1/auth/logout", None, Some(&token), None).await;
    assert_eq!(status, 204);
    for ws in [&mut by_ticket, &mut by_bearer] {
        let (events, code) = close_code(ws).await;
        assert_eq!(code, Some(4401), "{events:?}");
        assert!(events.contains(&"session.ended".to_string()), "{events:?}");
    }
    // The ended session cannot open a new one either.
    let (status, _, body) = send(
        &server,
        "POST",
        &format!("/v1/conversations/{conv}/live-ticket"),
        None,
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("session_revoked"))
    );
    let _ = by_bearer.close(None).await;
    server.stop().await;
}

#[actix_rt::test]
async fn a_logged_out_token_stays_refused_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let env = [(
        "PENPAL_JWT_SECRET",
        "0123456789abcdef0123456789abcdef-restart",
    )];
    let first = Process::start(data.path(), &env).await;
    let http = http();
    let body: Value = http
        .post(first.url("/v1/auth/register"))
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    let logout = http
        .post(first.url("/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    first.stop();

    let second = Process::start(data.path(), &env).await;
    let resp = http
        .post(second.url("/v1/conversations"))
        .bearer_auth(&token)
        .json(&json!({"mode": "tutor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "session_revoked");
    second.stop();
}

#[actix_rt::test]
async fn operator_details_need_the_operator_role() {
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let (_data, a) = args();
    let server = start_on(a, db.clone()).await;
    let learner = register(&server, "ana@example.com", None).await;
    let learner = learner["access_token"].as_str().unwrap();
    let op = register(&server, "ops@example.com", None).await;
    let old_token = op["access_token"].as_str().unwrap().to_string();

    let (status, ..) = send(&server, "GET", "/v1/plugins", None, None, None).await;
    assert_eq!(status, 401);
    let (status, _, body) = send(&server, "GET", "/v1/plugins", None, Some(learner), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, ..) = send(
        &server,
        "GET",
        "/v1/admin/status",
        None,
        Some(learner),
        None,
    )
    .await;
    assert_eq!(status, 403);
    // What anyone sees: the version, not the model's address or the database.
    let (status, _, version) = send(&server, "GET", "/v1/version", None, None, None).await;
    assert_eq!(status, 200);
    assert!(version["version"].is_string());
    assert!(
        version.get("llm").is_none() && version.get("database").is_none(),
        "{version}"
    );

    // What `penpal admin grant-role` does; the account's old session ends with it.
    penpal::auth::admin::grant_role(&db, "OPS@example.com", penpal::auth::Role::Operator)
        .await
        .unwrap();
    tokio::time::sleep(penpal::auth::tokens::SESSION_RECHECK).await;
    let (status, ..) = send(
        &server,
        "GET",
        "/v1/conversations",
        None,
        Some(&old_token),
        None,
    )
    .await;
    assert_eq!(status, 401, "a token from before the change");
    let (status, _, op) = send(
        &server,
        "POST",
        "/v1/auth/login",
        None,
        None,
        Some(json!({"email": "ops@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200);
    let op = op["access_token"].as_str().unwrap();
    let (status, _, plugins) = send(&server, "GET", "/v1/plugins", None, Some(op), None).await;
    assert_eq!(status, 200);
    assert!(plugins["plugins"].as_array().unwrap().len() >= 3);
    let (status, _, details) = send(&server, "GET", "/v1/admin/status", None, Some(op), None).await;
    assert_eq!(status, 200);
    assert_eq!(details["llm"]["scripted"], true);
    assert_eq!(details["database"]["kind"], "memory");
    server.stop().await;
}

#[test]
fn the_admin_command_explains_what_to_do() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let (ok, _, err) = penpal(&[
        "admin",
        "grant-role",
        "nobody@example.com",
        "operator",
        "--data-dir",
        dir,
    ]);
    assert!(!ok);
    assert!(
        err.contains("no account with the email nobody@example.com"),
        "{err}"
    );
    let (ok, _, err) = penpal(&[
        "admin",
        "grant-role",
        "a@example.com",
        "wizard",
        "--data-dir",
        dir,
    ]);
    assert!(!ok);
    assert!(
        err.contains("possible values: learner, teacher, school-admin, operator"),
        "{err}"
    );
    let (ok, _, err) = penpal(&[
        "admin",
        "revoke-role",
        "a@example.com",
        "learner",
        "--data-dir",
        dir,
    ]);
    assert!(!ok);
    assert!(err.contains("at least a learner"), "{err}");
}

/// Reads one HTTP/1.1 response from a kept-alive connection: its status.
async fn read_response(stream: &mut TcpStream) -> u16 {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = within(10, "a response", stream.read(&mut buf))
            .await
            .unwrap();
        assert!(n > 0, "the server closed a kept-alive connection");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(!head.contains("connection: close"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a sized response");
    while raw.len() < head_end + length {
        let n = within(10, "a body", stream.read(&mut buf)).await.unwrap();
        assert!(n > 0, "the server closed a kept-alive connection");
        raw.extend_from_slice(&buf[..n]);
    }
    status
}

#[actix_rt::test]
async fn a_refused_body_does_not_break_the_kept_alive_connection() {
    let (_data, a) = args();
    let server = start(a).await;
    let (token, conv) = learner_with_conversation(&server).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let body = r#"{"text":"Bonjour"}"#;
    for _ in 0..200 {
        let wrong = format!(
            "POST /v1/conversations/{conv}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(wrong.as_bytes()).await.unwrap();
        assert_eq!(read_response(&mut stream).await, 400);
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_response(&mut stream).await, 200);
    }
    server.stop().await;
}

#[actix_rt::test]
async fn an_oversized_frame_is_explained_then_closed_with_1009() {
    let (_data, a) = args();
    let server = start(a).await;
    let (token, conv) = learner_with_conversation(&server).await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        server.ws(&format!("/v1/conversations/{conv}/live")),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(next_text(&mut ws).await.unwrap()["type"], "hello");
    let huge = json!({"type": "message", "text": "a".repeat(penpal::actors::live::MAX_FRAME)});
    ws.send(Ws::Text(huge.to_string().into())).await.unwrap();
    let event = next_text(&mut ws).await.unwrap();
    assert_eq!(event["type"], "error");
    assert_eq!(event["code"], "too_large");
    assert!(event["message"].as_str().unwrap().contains("64 KiB"));
    let (_, code) = close_code(&mut ws).await;
    assert_eq!(code, Some(1009));
    server.stop().await;
}

/// An upstream failure reaches an anonymous visitor as a fixed message with a support id:
/// not the provider's words (with its masked key), not the model's address.
#[actix_rt::test]
async fn the_demo_never_shows_what_the_model_provider_said() {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}/v1", listener.local_addr().unwrap());
    let provider = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            (
                axum::http::StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": {"message": "Incorrect API key provided: sk-proj-abc*********xyz9", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})),
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, provider).await });
    let data = tempfile::tempdir().unwrap();
    let server = start(serve_args(data.path(), Some(upstream.clone()))).await;
    let (status, _, body) = send(
        &server,
        "POST",
        "/v1/demo/chat",
        None,
        None,
        Some(json!({"message": "Bonjour"})),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("support id"), "{message}");
    for leak in ["sk-", "API key", "401", "127.0.0.1", "invalid_api_key"] {
        assert!(!message.contains(leak), "{leak} in {message}");
    }
    server.stop().await;
}

/// A package that does not load is listed for the operator with its reason, in the API and
/// in `penpal plugins`, beside the plugins that run.
#[actix_rt::test]
async fn plugins_that_fail_to_load_are_listed_with_the_reason() {
    let (data, mut a) = args();
    let broken = data.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(
        plugin("tutor").join("penpal-plugin.toml"),
        broken.join("penpal-plugin.toml"),
    )
    .unwrap();
    std::fs::write(broken.join("plugin.wasm"), b"not a component").unwrap();
    a.plugins.plugin_dirs.push(broken.clone());
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = start_on(a, db.clone()).await;
    let op = operator_token(server.addr, &db).await;
    let (status, body) = get_as(server.addr, "/v1/plugins", Some(&op)).await;
    assert_eq!(status, 200);
    let failed = body["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{body}");
    assert!(failed[0]["package"].as_str().unwrap().ends_with("broken"));
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a valid component"),
        "{body}"
    );
    let bundled = std::fs::read_dir(repo().join("target/plugins"))
        .unwrap()
        .count();
    assert_eq!(
        body["plugins"].as_array().unwrap().len(),
        bundled,
        "the others run"
    );
    server.stop().await;

    let (_, out, err) = penpal(&[
        "plugins",
        "--plugin-dir",
        broken.to_str().unwrap(),
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    assert!(
        out.contains("broken") && out.contains("not a valid component"),
        "{out}{err}"
    );
}

/// Guessable passwords are refused at sign-up, with advice in the language the browser asks
/// for.
#[actix_rt::test]
async fn weak_passwords_are_refused_with_advice() {
    let (_data, a) = args();
    let server = start(a).await;
    for (weak, lang, opening) in [
        (
            "1111111234",
            "en-GB,en;q=0.9",
            "this password is too easy to guess",
        ),
        (
            "aaaaaaabcd",
            "fr-FR,fr;q=0.9,en;q=0.5",
            "ce mot de passe est trop facile à deviner",
        ),
    ] {
        let resp = http()
            .post(server.url("/v1/auth/register"))
            .header("accept-language", lang)
            .json(&json!({"email": "ana@example.com", "password": weak}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["field"], "password", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(opening),
            "{body}"
        );
    }
    server.stop().await;
}

/// A turn against a model that reports no usage is still metered, marked as estimated in the
/// export and counted as such in progress — never silently zero.
#[actix_rt::test]
async fn usage_a_server_does_not_report_is_estimated_not_zero() {
    let (_data, a) = args();
    let server = start(a).await;
    let (token, conv) = learner_with_conversation(&server).await;
    let (status, _, body) = send(
        &server,
        "POST",
        &format!("/v1/conversations/{conv}/messages"),
        None,
        Some(&token),
        Some(json!({"text": "Je suis allé à le marché [[usage:none]]"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, _, export) = send(&server, "GET", "/v1/me/export", None, Some(&token), None).await;
    let rows: Vec<&Value> = export["usage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["purpose"] == "reply")
        .collect();
    assert_eq!(rows.len(), 1, "{export}");
    assert_eq!(rows[0]["estimated"], true, "{rows:?}");
    assert!(rows[0]["prompt_tokens"].as_i64().unwrap() > 0);
    assert!(rows[0]["completion_tokens"].as_i64().unwrap() > 0);
    let (_, _, progress) = send(&server, "GET", "/v1/me/progress", None, Some(&token), None).await;
    assert!(
        progress["usage"]["estimated_calls"].as_i64().unwrap() >= 1,
        "{progress}"
    );
    server.stop().await;
}

/// A body that is not a JSON object is refused (serde alone reads a struct from an array), and
/// the OpenAPI document declares what the server enforces: the shared error statuses with
/// their body, parameter ranges and non-blank texts.
#[actix_rt::test]
async fn bodies_must_be_objects_and_the_document_declares_the_rules() {
    let (_data, a) = args();
    let server = start(a).await;
    let (token, _) = learner_with_conversation(&server).await;
    let (status, _, body) = send(
        &server,
        "POST",
        "/v1/conversations",
        None,
        Some(&token),
        Some(json!([null, null])),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object")
    );

    let (_, _, doc) = send(&server, "GET", "/openapi.json", None, None, None).await;
    assert!(doc["components"]["schemas"]["Error"].is_object());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            if op
                .get("security")
                .is_some_and(|s| !s.as_array().unwrap().is_empty())
            {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} declares 401"
                );
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} declares {status}"
                    );
                }
            }
        }
    }
    let limit = doc["paths"]["/v1/conversations"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()
        .clone();
    assert_eq!(
        (
            limit["schema"]["minimum"].as_i64(),
            limit["schema"]["maximum"].as_i64()
        ),
        (Some(1), Some(100)),
        "{limit}"
    );
    let text = &doc["components"]["schemas"]["NewMessage"]["properties"]["text"];
    assert_eq!(
        (text["minLength"].as_i64(), text["maxLength"].as_i64()),
        (Some(1), Some(4000)),
        "{text}"
    );
    server.stop().await;
}
