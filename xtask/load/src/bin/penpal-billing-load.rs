//! Billing load tool: payment webhooks verified, stored and applied per second.
//!
//! Runs a release `penpal serve` taking payments through the `stripe` plugin, signs up one
//! learner, and posts N signed `customer.subscription.updated` events about one subscription
//! (each newer than the last, so each is applied), C at a time, timing each answer. Beside it,
//! in the same run, the same POST to a provider that is not installed — answered after the body
//! is read but before any verification — as the baseline of routing and reading alone.
//!
//! ```sh
//! cargo xtask billing-load -- --events 2000 --concurrency 8
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a tool: fail loudly

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use penpal_load::{free_port, pct};
use serde_json::json;
use sha2::Sha256;

/// Payment webhooks: verified, stored and applied per second.
#[derive(Debug, clap::Parser)]
#[command(name = "penpal-billing-load", about)]
struct Opts {
    /// Events to post.
    #[arg(long, default_value_t = 2000)]
    events: usize,
    /// Posts at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The penpal binary to run.
    #[arg(long, default_value = "target/release/penpal")]
    penpal: PathBuf,
}

const SECRET: &str = "whsec_load";

fn sign(t: u64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// Posts `bodies`, `concurrency` at a time, to `url`; each answer's time (ms) and status.
async fn post_all(
    http: &reqwest::Client,
    url: &str,
    bodies: Vec<String>,
    concurrency: usize,
    signed: bool,
) -> (Vec<f64>, Duration, Vec<u16>) {
    use futures_util::StreamExt;
    let started = Instant::now();
    let results: Vec<(f64, u16)> = futures_util::stream::iter(bodies)
        .map(|body| {
            let http = http.clone();
            let url = url.to_string();
            async move {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let mut req = http.post(url).header("content-type", "application/json");
                if signed {
                    req = req.header("stripe-signature", sign(t, &body));
                }
                let at = Instant::now();
                let r = req.body(body).send().await.unwrap();
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                (at.elapsed().as_secs_f64() * 1000.0, status)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let took = started.elapsed();
    let mut times: Vec<f64> = results.iter().map(|r| r.0).collect();
    times.sort_by(f64::total_cmp);
    (times, took, results.iter().map(|r| r.1).collect())
}

#[tokio::main]
async fn main() {
    let o = <Opts as clap::Parser>::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("penpal.toml");
    std::fs::write(
        &config,
        format!(
            "[billing]\nprovider = \"stripe\"\n\n[plugins.stripe]\ngrant = {{ secrets = [\"api_key\", \"webhook_secret\"] }}\nsecrets = {{ api_key = \"sk_load\", webhook_secret = \"{SECRET}\" }}\n"
        ),
    )
    .unwrap();
    let addr = free_port();
    let mut child = std::process::Command::new(&o.penpal)
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--plugin-dir",
            "target/plugins",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("PENPAL_DATABASE", "mem://")
        .env("PENPAL_CONFIG", &config)
        .env("PENPAL_METRICS_LISTEN", "off")
        .env("PENPAL_LOG", "error")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", o.penpal.display()));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let base = format!("http://{addr}");
    penpal_load::wait_ready(&http, &base).await;
    let r = http
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": "payer@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let me: serde_json::Value = http
        .get(format!("{base}/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user = me["id"].as_str().unwrap().to_string();

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let events: Vec<String> = (0..o.events)
        .map(|i| {
            json!({"id": format!("evt_load_{i}"), "type": "customer.subscription.updated",
                   "created": now - o.events as u64 + i as u64,
                   "data": {"object": {"id": "sub_load", "customer": "cus_load",
                       "status": if i % 2 == 0 { "active" } else { "past_due" },
                       "metadata": {"penpal_customer": user, "penpal_plan": "premium-monthly"},
                       "cancel_at_period_end": false}}})
            .to_string()
        })
        .collect();
    eprintln!(
        "billing-load: {} signed events, {} at a time…",
        o.events, o.concurrency
    );
    let (base_times, base_took, base_status) = post_all(
        &http,
        &format!("{base}/v1/billing/webhooks/not-installed"),
        events.clone(),
        o.concurrency,
        false,
    )
    .await;
    assert!(
        base_status.iter().all(|s| *s == 404),
        "the baseline answers 404"
    );
    let (times, took, status) = post_all(
        &http,
        &format!("{base}/v1/billing/webhooks/stripe"),
        events,
        o.concurrency,
        true,
    )
    .await;
    let ok = status.iter().filter(|s| **s == 200).count();
    let _ = child.kill();
    let _ = child.wait();

    let rate = ok as f64 / took.as_secs_f64();
    let base_rate = o.events as f64 / base_took.as_secs_f64();
    println!(
        "webhooks verified, stored and applied: {ok}/{} → {rate:.0}/s; answer p50 {:.2} ms, p99 {:.2} ms",
        o.events,
        pct(&times, 0.5),
        pct(&times, 0.99)
    );
    println!(
        "the same POST answered without verification (same run): {base_rate:.0}/s, p50 {:.2} ms, p99 {:.2} ms; ratio {:.2}",
        pct(&base_times, 0.5),
        pct(&base_times, 0.99),
        rate / base_rate
    );
}
