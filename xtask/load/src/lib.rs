//! What the load tools share: a free loopback port, percentiles, waiting for a server, the
//! test SMTP server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tools: fail loudly

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A loopback address nothing listens on yet.
pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The `p` quantile (0–1) of `sorted`, NaN when it is empty.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Waits (up to a minute) until the server at `base` answers `GET /readyz` with success.
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The test SMTP server (`runtime/tests/smtp/sink.py` under `python`, which has aiosmtpd), its
/// own process, writing each message to `dir`; answers it and its port.
pub fn start_sink(python: &Path, dir: &Path) -> (std::process::Child, u16) {
    let mut child = std::process::Command::new(python)
        .arg("runtime/tests/smtp/sink.py")
        .arg("--dir")
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (run `cargo xtask test` once: it installs aiosmtpd)",
                python.display()
            )
        });
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
    (child, port)
}

/// The next text message on a socket, passing over pings and pongs (the server pings every
/// 15 s; tungstenite answers them); `None` once the socket closes or fails.
pub async fn next_text<S>(ws: &mut S) -> Option<String>
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Ok(Message::Binary(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

/// How a turn on a socket ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `turn.complete`.
    Complete,
    /// `turn.error` or `error`.
    Failed,
    /// The socket closed before the turn ended.
    Closed,
}

/// Sends `text` as the learner's message on `ws` and reads the turn's events to its end: how
/// it ended, and how long after sending its first delta came (none when none did).
pub async fn chat_turn<S>(ws: &mut S, text: &str) -> (Ended, Option<Duration>)
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + futures_util::Sink<
            tokio_tungstenite::tungstenite::Message,
            Error = tokio_tungstenite::tungstenite::Error,
        > + Unpin,
{
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let sent = std::time::Instant::now();
    let message = serde_json::json!({"type": "message", "text": text}).to_string();
    if ws.send(Message::Text(message.into())).await.is_err() {
        return (Ended::Closed, None);
    }
    let mut first = None;
    loop {
        let Some(t) = next_text(ws).await else {
            return (Ended::Closed, first);
        };
        let e: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
        match e["type"].as_str().unwrap_or_default() {
            "turn.delta" if first.is_none() => first = Some(sent.elapsed()),
            "turn.complete" => return (Ended::Complete, first),
            "turn.error" | "error" => return (Ended::Failed, first),
            _ => {}
        }
    }
}
