//! Mail load tool: the outbox's throughput and latency against a real SMTP server.
//!
//! Runs a release `penpal serve` and the test SMTP server (aiosmtpd, `runtime/tests/smtp/sink.py`
//! from `target/smtp`), each its own process; signs up N learners with C at a time, and
//! measures, for each verification mail, the time from the sign-up's answer (just after the
//! commit that enqueued it) to the SMTP server's acceptance (the file it wrote). Beside it, in
//! the same run, the SMTP server's own acceptance rate, with a plain SMTP client sending the
//! same number of messages over one connection — the ceiling penpal's outbox works under. Last,
//! the password-reset request's answer time for a known and an unknown address, interleaved,
//! to show that it does not tell them apart.
//!
//! ```sh
//! cargo xtask mail-load -- --signups 200 --concurrency 8
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a tool: fail loudly

use penpal_load::{free_port, pct};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The outbox's throughput and latency against a real SMTP server.
#[derive(Debug, clap::Parser)]
#[command(name = "penpal-mail-load", about)]
struct Opts {
    /// Learners to sign up (one verification mail each).
    #[arg(long, default_value_t = 200)]
    signups: usize,
    /// Sign-ups at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Password-reset requests per kind of address (known, unknown).
    #[arg(long, default_value_t = 60)]
    resets: usize,
    /// The penpal binary to run.
    #[arg(long, default_value = "target/release/penpal")]
    penpal: PathBuf,
    /// The Python with aiosmtpd (installed by `cargo xtask test`).
    #[arg(long, default_value = "target/smtp/bin/python")]
    python: PathBuf,
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// When each message to each address was accepted (the file's modification time).
fn accepted(dir: &Path) -> HashMap<String, SystemTime> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let when = entry.metadata().unwrap().modified().unwrap();
        let raw = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(to) = raw
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .map(|t| t.trim().trim_matches(['<', '>']).to_string())
        {
            out.insert(to, when);
        }
    }
    out
}

/// Sends `n` small messages over one SMTP connection and returns how long it took.
async fn smtp_baseline(port: u16, n: usize) -> Duration {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    // Reads one (possibly multi-line) reply and checks its class.
    async fn reply(
        read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        line: &mut String,
        class: char,
    ) {
        loop {
            line.clear();
            read.read_line(line).await.unwrap();
            assert!(line.starts_with(class), "SMTP said {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    }
    reply(&mut read, &mut line, '2').await;
    write.write_all(b"EHLO bench\r\n").await.unwrap();
    reply(&mut read, &mut line, '2').await;
    let start = Instant::now();
    for i in 0..n {
        write
            .write_all(
                format!(
                    "MAIL FROM:<bench@penpal.test>\r\nRCPT TO:<base{i}@example.com>\r\nDATA\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        reply(&mut read, &mut line, '2').await;
        reply(&mut read, &mut line, '2').await;
        reply(&mut read, &mut line, '3').await;
        write
            .write_all(
                format!("To: base{i}@example.com\r\nSubject: baseline\r\n\r\nA message of about the size of a short mail.\r\n.\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        reply(&mut read, &mut line, '2').await;
    }
    let took = start.elapsed();
    let _ = write.write_all(b"QUIT\r\n").await;
    took
}

#[tokio::main]
async fn main() {
    let o = <Opts as clap::Parser>::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mail = tempfile::tempdir().unwrap();
    let (mut sink, port) = penpal_load::start_sink(&o.python, mail.path());

    let addr = free_port();
    let data = tempfile::tempdir().unwrap();
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
        .env("PENPAL_SIGNUPS_PER_HOUR", "1000000")
        .env("PENPAL_SMTP_URL", format!("smtp://127.0.0.1:{port}"))
        .env("PENPAL_MAIL_FROM", "Penpal <no-reply@penpal.test>")
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

    // Sign-ups, `concurrency` at a time; each answer's time is when its mail was committed.
    eprintln!(
        "mail-load: {} sign-ups, {} at a time…",
        o.signups, o.concurrency
    );
    let started = Instant::now();
    let mut committed: HashMap<String, SystemTime> = HashMap::new();
    let ids: Vec<usize> = (0..o.signups).collect();
    for chunk in ids.chunks(o.concurrency.max(1)) {
        let done = futures_util::future::join_all(chunk.iter().map(|i| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let email = format!("learner{i}@example.com");
                let r = http
                    .post(format!("{base}/v1/auth/register"))
                    .json(&json!({"email": email, "password": "correct horse battery"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
                (email, SystemTime::now())
            }
        }))
        .await;
        committed.extend(done);
    }
    let signup_secs = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(120);
    let arrived = loop {
        let a = accepted(mail.path());
        if a.len() >= o.signups || Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let all_sent = arrived.values().max().copied().unwrap_or(SystemTime::now());
    let first_commit = committed
        .values()
        .min()
        .copied()
        .unwrap_or(SystemTime::now());
    let latencies = sorted(
        committed
            .iter()
            .filter_map(|(to, at)| {
                let got = arrived.get(to)?;
                Some(got.duration_since(*at).unwrap_or_default().as_secs_f64() * 1000.0)
            })
            .collect(),
    );
    let outbox_rate = arrived.len() as f64
        / all_sent
            .duration_since(first_commit)
            .unwrap_or(Duration::from_millis(1))
            .as_secs_f64();

    // The SMTP server on its own, in the same run.
    let baseline = smtp_baseline(port, o.signups).await;
    let sink_rate = o.signups as f64 / baseline.as_secs_f64();

    // Reset requests: a known and an unknown address, interleaved.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..o.resets {
        for (email, into) in [
            ("learner0@example.com", &mut known),
            (&*format!("nobody{i}@example.com"), &mut unknown),
        ] {
            let t = Instant::now();
            let r = http
                .post(format!("{base}/v1/auth/password-reset/request"))
                .json(&json!({"email": email}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 202);
            let _ = r.bytes().await;
            into.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let (known, unknown) = (sorted(known), sorted(unknown));

    let _ = child.kill();
    let _ = child.wait();
    let _ = sink.kill();
    let _ = sink.wait();

    println!(
        "sign-ups: {} in {signup_secs:.2} s ({:.0}/s)",
        o.signups,
        o.signups as f64 / signup_secs
    );
    println!(
        "verification mails accepted by SMTP: {}/{}; commit → acceptance p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        o.signups,
        pct(&latencies, 0.5),
        pct(&latencies, 0.99)
    );
    println!(
        "outbox throughput {outbox_rate:.0} mails/s; the SMTP server alone (one connection, same run) {sink_rate:.0} mails/s; ratio {:.2}",
        outbox_rate / sink_rate
    );
    println!(
        "reset request answer: known address p50 {:.2} ms p90 {:.2} ms; unknown p50 {:.2} ms p90 {:.2} ms; p50 ratio {:.2}",
        pct(&known, 0.5),
        pct(&known, 0.9),
        pct(&unknown, 0.5),
        pct(&unknown, 0.9),
        pct(&known, 0.5) / pct(&unknown, 0.5)
    );
}
