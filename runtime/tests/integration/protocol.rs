//! The live protocol against its AsyncAPI document: a real server is driven through every
//! event it can send — over the socket, as Server-Sent Events and as the whole-reply POST —
//! each event and each frame the test sent is recorded, and the official AsyncAPI parser
//! (`@asyncapi/parser`, from npm) validates `/asyncapi.json` and every recorded event against
//! its message's schema.

use std::collections::BTreeSet;

use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Everything both sides said, in order.
#[derive(Default)]
struct Record(Vec<Value>);

impl Record {
    fn server(&mut self, event: &Value) {
        self.0.push(json!({"from": "server", "event": event}));
    }

    async fn send(&mut self, ws: &mut Socket, frame: Value) {
        self.0.push(json!({"from": "client", "event": frame}));
        ws.send(Ws::Text(frame.to_string().into())).await.unwrap();
    }

    /// Events until (and including) the first of a type in `until`.
    async fn until(&mut self, ws: &mut Socket, until: &[&str]) -> Vec<Value> {
        let mut seen = Vec::new();
        within(30, &format!("an event of {until:?}"), async {
            loop {
                match ws.next().await {
                    Some(Ok(Ws::Text(t))) => {
                        let e: Value = serde_json::from_str(&t).unwrap();
                        self.server(&e);
                        let done = until.contains(&e["type"].as_str().unwrap());
                        seen.push(e);
                        if done {
                            return;
                        }
                    }
                    Some(Ok(Ws::Close(_))) | None => panic!("closed before {until:?}: {seen:?}"),
                    _ => {}
                }
            }
        })
        .await;
        seen
    }

    fn types(&self, from: &str) -> BTreeSet<String> {
        self.0
            .iter()
            .filter(|r| r["from"] == from)
            .map(|r| r["event"]["type"].as_str().unwrap().to_string())
            .collect()
    }
}

struct Learner {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Learner {
    async fn req(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        within(60, path, r.send()).await.unwrap()
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.req(method, path, body).await.json().await.unwrap()
    }

    async fn socket(&self, conv: &str, after: Option<i64>) -> Socket {
        let ticket = self
            .json(
                "POST",
                &format!("/v1/conversations/{conv}/live-ticket"),
                None,
            )
            .await;
        let mut url = format!(
            "{}/v1/conversations/{conv}/live?ticket={}",
            self.base.replace("http://", "ws://"),
            ticket["ticket"].as_str().unwrap()
        );
        if let Some(a) = after {
            url.push_str(&format!("&after={a}"));
        }
        within(10, "socket", tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .0
    }
}

#[actix_rt::test]
async fn every_event_the_server_sends_matches_the_asyncapi_document() {
    let data = tempfile::tempdir().unwrap();
    let server = start(serve_args(data.path(), None)).await;
    let ana = Learner {
        http: http(),
        base: server.url(""),
        token: new_learner(&server.url(""), "B1").await,
    };
    let conv = ana
        .json("POST", "/v1/conversations", Some(json!({"mode": "tutor"})))
        .await;
    let conv = conv["id"].as_str().unwrap().to_string();
    let mut rec = Record::default();

    // A socket: hello, pong, a bad frame, a turn, a refused message while it runs.
    let mut ws = ana.socket(&conv, None).await;
    rec.until(&mut ws, &["hello"]).await;
    rec.send(&mut ws, json!({"type": "ping"})).await;
    rec.until(&mut ws, &["pong"]).await;
    rec.send(&mut ws, json!({"type": "shout", "text": "x"}))
        .await;
    let bad = rec.until(&mut ws, &["error"]).await;
    assert_eq!(bad.last().unwrap()["code"], "bad_frame");
    rec.send(
        &mut ws,
        json!({"type": "message", "text": "Je va au cinema [[slow:1500]]", "client_id": "c1"}),
    )
    .await;
    rec.until(&mut ws, &["message.stored"]).await;
    // A second tab joins mid-turn and asks for what it missed.
    let mut late = ana.socket(&conv, None).await;
    let hello = rec.until(&mut late, &["hello"]).await;
    assert!(!hello[0]["running"].is_null(), "{hello:?}");
    rec.send(&mut late, json!({"type": "resume", "after_seq": 0}))
        .await;
    rec.until(&mut late, &["turn.resume"]).await;
    rec.send(
        &mut ws,
        json!({"type": "message", "text": "Encore", "client_id": "c2"}),
    )
    .await;
    let busy = rec.until(&mut ws, &["error"]).await;
    assert_eq!(busy.last().unwrap()["code"], "turn_in_progress");
    assert_eq!(busy.last().unwrap()["client_id"], "c2");
    rec.until(&mut ws, &["turn.complete"]).await;
    rec.until(&mut late, &["turn.complete"]).await;

    // A failing turn, then its retry.
    rec.send(
        &mut ws,
        json!({"type": "message", "text": "Et alors [[fault:500]]"}),
    )
    .await;
    let failed = rec.until(&mut ws, &["turn.error"]).await;
    let seq = failed.last().unwrap()["seq"].as_i64().unwrap();
    rec.send(&mut ws, json!({"type": "retry", "seq": seq}))
        .await;
    rec.until(&mut ws, &["turn.error"]).await;

    // Reconnecting after seq 0 replays the stored messages.
    let mut again = ana.socket(&conv, Some(0)).await;
    let replay = rec.until(&mut again, &["message"]).await;
    assert_eq!(replay.last().unwrap()["seq"], 1);

    // Server-Sent Events and the whole-reply POST carry the same events.
    let sse = ana
        .http
        .post(server.url(&format!("/v1/conversations/{conv}/messages")))
        .bearer_auth(&ana.token)
        .header("accept", "text/event-stream")
        .json(&json!({"text": "Tu aimes le cinéma ?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 201);
    let body = within(30, "SSE ends", sse.text()).await.unwrap();
    let mut names = Vec::new();
    for block in body.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let name = block.lines().find_map(|l| l.strip_prefix("event: "));
        let data: String = block
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(name) = name {
            let e: Value = serde_json::from_str(&data).unwrap();
            assert_eq!(e["type"], name, "the SSE event is named by its type");
            names.push(name.to_string());
            rec.server(&e);
        }
    }
    assert_eq!(names.first().map(String::as_str), Some("message.accepted"));
    assert_eq!(names.last().map(String::as_str), Some("turn.complete"));
    let whole = ana
        .req(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(json!({"text": "Merci !"})),
        )
        .await;
    assert_eq!(whole.status(), 201);
    let whole: Value = whole.json().await.unwrap();
    assert_eq!(whole["type"], "turn.complete");
    rec.server(&whole);
    // The sockets heard those turns as well.
    rec.until(&mut ws, &["turn.complete"]).await;
    rec.until(&mut ws, &["turn.complete"]).await;

    // Deleting the conversation closes its sockets; ending the session closes the rest.
    let other = ana
        .json("POST", "/v1/conversations", Some(json!({"mode": "tutor"})))
        .await;
    let other = other["id"].as_str().unwrap().to_string();
    let mut watcher = ana.socket(&other, None).await;
    rec.until(&mut watcher, &["hello"]).await;
    assert_eq!(
        ana.req("DELETE", &format!("/v1/conversations/{conv}"), None)
            .await
            .status(),
        204
    );
    rec.until(&mut ws, &["conversation.closed"]).await;
    assert_eq!(ana.req("POST", "/v1/auth/logout", None).await.status(), 204);
    rec.until(&mut watcher, &["session.ended"]).await;

    // Every kind of event and frame was exercised.
    let server_types: BTreeSet<String> = [
        "hello",
        "message",
        "message.accepted",
        "message.stored",
        "turn.resume",
        "turn.delta",
        "turn.complete",
        "turn.error",
        "conversation.closed",
        "session.ended",
        "error",
        "pong",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(rec.types("server"), server_types);
    assert_eq!(
        rec.types("client"),
        ["message", "ping", "resume", "retry", "shout"]
            .into_iter()
            .map(String::from)
            .collect()
    );

    // The document, and every event, through the official parser.
    let doc = ana
        .http
        .get(server.url("/asyncapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);
    let doc: Value = doc.json().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("asyncapi.json"), doc.to_string()).unwrap();
    // The unknown `shout` frame is the one the server must refuse: it is not in the document.
    let recorded: Vec<&Value> = rec
        .0
        .iter()
        .filter(|r| r["event"]["type"] != "shout")
        .collect();
    std::fs::write(
        dir.path().join("events.json"),
        serde_json::to_string(&recorded).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("node")
        .current_dir(repo().join("runtime/tests/asyncapi"))
        .arg("validate.mjs")
        .arg(dir.path().join("asyncapi.json"))
        .arg(dir.path().join("events.json"))
        .output()
        .expect("node runs (cargo xtask test installs the validator's packages)");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("checked {} events", recorded.len())),
        "{said}"
    );
    server.stop().await;
}
