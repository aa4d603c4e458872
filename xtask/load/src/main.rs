//! Load tool: opens N concurrent socket conversations against `penpal serve` (a release build,
//! run as its own process) with the scripted model (`penpal scripted-llm`, a third process) at
//! zero latency, and reports turns per second, the latency penpal adds to the first delta, and
//! resident memory per idle socket.
//!
//! ```sh
//! cargo xtask load -- --conversations 100 --seconds 20 --idle 1000 [--think-ms 500]
//! ```
//!
//! Added latency is what the client sees from sending a message to its first `turn.delta`,
//! minus the scripted model's own time to first byte, measured against it directly in the
//! same run, so the figure is penpal's share on this machine at this moment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a tool: fail loudly

use penpal_load::{free_port, pct};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Concurrent socket conversations against a release `penpal serve`.
#[derive(Debug, clap::Parser)]
#[command(name = "penpal-load", about)]
struct Opts {
    /// Learners chatting at once, each on its own socket.
    #[arg(long, default_value_t = 100)]
    conversations: usize,
    /// How long to chat, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Idle sockets opened to measure memory per socket (0: none).
    #[arg(long, default_value_t = 1000)]
    idle: usize,
    /// The penpal binary to run.
    #[arg(long, default_value = "target/release/penpal")]
    penpal: PathBuf,
    /// Pause between a reply and the next message, per conversation, in milliseconds (0: back
    /// to back).
    #[arg(long = "think-ms", default_value = "0", value_parser = parse_ms)]
    think: Duration,
}

fn parse_ms(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("`{s}` is not a number of milliseconds"))
}

fn opts() -> Opts {
    <Opts as clap::Parser>::parse()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used so far, in milliseconds.
fn cpu_ms(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
    // USER_HZ is 100 on every Linux this tool runs on.
    ticks * 10.0
}

/// CPU milliseconds of each of `pid`'s threads, summed by thread name.
fn threads_cpu_ms(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().to_string();
        let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        // The main thread runs the actors (the system arbiter) and the accept loop.
        let name = if tid == pid.to_string() {
            "main (actors)".to_string()
        } else {
            name
        };
        *by_name.entry(name).or_insert(0.0) += cpu_ms(&format!("{pid}/task/{tid}"));
    }
    by_name
}

/// Time to the first streamed byte of a reply, straight from the scripted model.
async fn model_first_byte(http: &reqwest::Client, base: &str) -> f64 {
    let body = json!({"model": "penpal-scripted", "stream": true, "messages": [
        {"role": "system", "content": "You are a tutor for a learner at level B1."},
        {"role": "user", "content": "Bonjour, je voudrais parler de mon weekend."}]});
    let t = Instant::now();
    let resp = http
        .post(format!("{base}/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let _ = stream.next().await;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    while stream.next().await.is_some() {}
    ms
}

async fn register(http: &reqwest::Client, base: &str, i: usize) -> (String, String) {
    let email = format!("load{i}-{}@example.com", std::process::id());
    let r: Value = http
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["access_token"].as_str().expect("registered").to_string();
    http.patch(format!("{base}/v1/me/profile"))
        .bearer_auth(&token)
        .json(&json!({"native_language": "en", "targets": [{"language": "fr", "level": "B1"}]}))
        .send()
        .await
        .unwrap();
    let c: Value = http
        .post(format!("{base}/v1/conversations"))
        .bearer_auth(&token)
        .json(&json!({"mode": "tutor"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (token, c["id"].as_str().expect("a conversation").to_string())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(addr: SocketAddr, token: &str, conv: &str) -> Socket {
    let mut req = format!("ws://{addr}/v1/conversations/{conv}/live")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("socket");
    ws
}

#[tokio::main]
async fn main() {
    let o = opts();
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The scripted model, its own process, at zero latency.
    let model_addr = free_port();
    let mut model = std::process::Command::new(&o.penpal)
        .args(["scripted-llm", "--listen", &model_addr.to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", o.penpal.display()));
    let model_url = format!("http://{model_addr}/v1");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(model_addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

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
        // Every simulated learner signs up from this one address.
        .env("PENPAL_SIGNUPS_PER_HOUR", "1000000")
        .env("PENPAL_LLM_BASE_URL", &model_url)
        .env("PENPAL_LLM_MODEL", "penpal-scripted")
        .env(
            "PENPAL_LOG",
            std::env::var("LOAD_SERVER_LOG").unwrap_or_else(|_| "error".into()),
        )
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (build it with cargo build --release -p penpal)",
                o.penpal.display()
            )
        });
    let pid = child.id();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let base = format!("http://{addr}");
    penpal_load::wait_ready(&http, &base).await;
    let at_start = rss_kib(pid);
    eprintln!("load: registering {} learners…", o.conversations);
    let mut users = Vec::new();
    for chunk in (0..o.conversations).collect::<Vec<_>>().chunks(8) {
        let batch =
            futures_util::future::join_all(chunk.iter().map(|i| register(&http, &base, *i))).await;
        users.extend(batch);
    }

    // Idle sockets first, while the heap is fresh: after the load phase, memory freed by
    // finished turns would absorb them and hide their cost.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid);
    let (token, conv) = users[0].clone();
    let mut idle = Vec::new();
    for _ in 0..o.idle {
        let mut ws = socket(addr, &token, &conv).await;
        let _ = ws.next().await; // hello
        idle.push(ws);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    drop(idle);

    // Baseline: the model's own first byte, sampled while idle and alongside the load.
    let mut baseline = Vec::new();
    for _ in 0..50 {
        baseline.push(model_first_byte(&http, &model_url).await);
    }

    eprintln!(
        "load: {} conversations for {} s…",
        o.conversations, o.seconds
    );
    let turns = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let mut tasks = Vec::new();
    let count = users.len() as u32;
    for (i, (token, conv)) in users.clone().into_iter().enumerate() {
        let (turns, errors, think) = (turns.clone(), errors.clone(), o.think);
        tasks.push(tokio::spawn(async move {
            let mut ws = socket(addr, &token, &conv).await;
            let mut firsts = Vec::new();
            let mut n = 0;
            // Paced learners start spread over one pause and vary their pauses (±50%), as
            // people do; started together they would stay in lockstep and every turn would
            // queue behind the others of its wave.
            let pause = |n: u32| {
                think.mul_f64(0.5 + f64::from((i as u32 * 7919 + n * 104_729) % 1000) / 1000.0)
            };
            tokio::time::sleep(think * i as u32 / count).await;
            while Instant::now() < deadline {
                n += 1;
                let text = format!("Le weekend dernier je va à le marché avec mon amis, tour {n}");
                let (ended, first) = penpal_load::chat_turn(&mut ws, &text).await;
                match ended {
                    penpal_load::Ended::Complete => turns.fetch_add(1, Ordering::Relaxed),
                    penpal_load::Ended::Failed => errors.fetch_add(1, Ordering::Relaxed),
                    // The socket closed under the learner: that turn failed.
                    penpal_load::Ended::Closed => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return firsts;
                    }
                };
                let first = first.map(|d| d.as_secs_f64() * 1000.0);
                firsts.extend(first);
                tokio::time::sleep(pause(n)).await;
            }
            firsts
        }));
    }
    let started = Instant::now();
    let pids = [pid.to_string(), model.id().to_string(), "self".to_string()];
    let cpu_before: Vec<f64> = pids.iter().map(|p| cpu_ms(p)).collect();
    let threads_before = threads_cpu_ms(pid);
    let sampler = {
        let http = http.clone();
        let model_url = model_url.clone();
        tokio::spawn(async move {
            let mut under_load = Vec::new();
            while Instant::now() < deadline {
                under_load.push(model_first_byte(&http, &model_url).await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            under_load
        })
    };
    let mut firsts = Vec::new();
    for t in tasks {
        firsts.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu: Vec<f64> = pids
        .iter()
        .zip(&cpu_before)
        .map(|(p, b)| cpu_ms(p) - b)
        .collect();
    let threads_after = threads_cpu_ms(pid);
    baseline.extend(sampler.await.unwrap());
    firsts.sort_by(f64::total_cmp);
    baseline.sort_by(f64::total_cmp);
    let done = turns.load(Ordering::Relaxed);

    println!(
        "penpal load: {} conversations, {:.1} s, {} ms between turns, scripted model at zero latency",
        o.conversations,
        elapsed,
        o.think.as_millis()
    );
    println!(
        "  turns completed      {done} ({} errors)",
        errors.load(Ordering::Relaxed)
    );
    println!("  turns per second     {:.0}", done as f64 / elapsed);
    println!(
        "  first delta, client  p50 {:.2} ms  p99 {:.2} ms",
        pct(&firsts, 0.5),
        pct(&firsts, 0.99)
    );
    println!(
        "  model first byte     p50 {:.2} ms  p99 {:.2} ms (baseline, same run)",
        pct(&baseline, 0.5),
        pct(&baseline, 0.99)
    );
    println!(
        "  added by penpal      p50 {:.2} ms  p99 {:.2} ms",
        pct(&firsts, 0.5) - pct(&baseline, 0.5),
        pct(&firsts, 0.99) - pct(&baseline, 0.99)
    );
    let per_turn = |ms: f64| ms / done.max(1) as f64;
    println!(
        "  CPU per turn         penpal {:.2} ms, model {:.2} ms, load client {:.2} ms ({} cores)",
        per_turn(cpu[0]),
        per_turn(cpu[1]),
        per_turn(cpu[2]),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let threads: Vec<String> = threads_after
        .iter()
        .map(|(name, ms)| (name, ms - threads_before.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, ms)| *ms > 0.0)
        .map(|(name, ms)| format!("{name} {:.2}", per_turn(ms)))
        .collect();
    println!(
        "  penpal threads       {} (ms per turn)",
        threads.join(", ")
    );
    println!(
        "  resident memory      {} MiB ready, {} MiB after {} sign-ups",
        at_start / 1024,
        before / 1024,
        o.conversations
    );
    if o.idle > 0 {
        println!(
            "  idle sockets         {} : RSS {} → {} KiB, {:.1} KiB per socket",
            o.idle,
            before,
            after,
            (after.saturating_sub(before)) as f64 / o.idle as f64
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = model.kill();
    let _ = model.wait();
}
