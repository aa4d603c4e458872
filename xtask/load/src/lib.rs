//! What the load tools share: a free loopback port, percentiles, waiting for a server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tools: fail loudly

use std::net::SocketAddr;
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
