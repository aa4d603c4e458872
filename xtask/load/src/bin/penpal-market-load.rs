//! Marketplace load tool: how long a published package takes to answer on another server, and
//! what installs and upgrades cost while learners are chatting.
//!
//! Runs two release `penpal serve`s — a registry (A) and a server that installs from it (B) —
//! the scripted model and the test SMTP server, each its own process. A publisher signs up on
//! A (its address confirmed through the mailed link), registers a key made with `penpal key
//! generate` and makes a publish token. Then, timed:
//!
//! 1. **publish → first call**: `penpal plugin publish` of a tutor to A, B's operator installs
//!    it from A (mirrored, its signature checked on B), and a learner's first turn with it on
//!    B. Baseline in the same run: a turn with a tutor B already runs.
//! 2. **installs and upgrades under load**: N learners chat on sockets with the installed
//!    tutor on B while B installs another package from A and upgrades the one they are
//!    chatting with. Baselines in the same run: the same install and upgrade on B with nobody
//!    chatting, and a control — as many other learners chatting as long with nothing
//!    installed or upgraded — for what conversations cost as they grow. Every turn is
//!    counted; a failed one is reported.
//!
//! ```sh
//! cargo xtask market-load -- --conversations 100 --seconds 10
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a tool: fail loudly

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use penpal_load::{free_port, pct};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Publish → first call, and installs and upgrades under chatting load.
#[derive(Debug, clap::Parser)]
#[command(name = "penpal-market-load", about)]
struct Opts {
    /// Learners chatting on B during the install and the upgrade.
    #[arg(long, default_value_t = 100)]
    conversations: usize,
    /// Seconds of chatting before, between and after the install and the upgrade.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Pause between a reply and a learner's next message, in milliseconds (±50%).
    #[arg(long, default_value_t = 500)]
    think_ms: u64,
    /// The package published (a directory with penpal-plugin.toml and plugin.wasm).
    #[arg(long, default_value = "target/plugins/tutor")]
    package: PathBuf,
    /// The penpal binary to run.
    #[arg(long, default_value = "target/release/penpal")]
    penpal: PathBuf,
    /// The Python with aiosmtpd (installed by `cargo xtask test`).
    #[arg(long, default_value = "target/smtp/bin/python")]
    python: PathBuf,
}

const PASSWORD: &str = "correct horse battery";

struct Server {
    child: Child,
    base: String,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(o: &Opts, data: &Path, env: &[(&str, String)], args: &[&str]) -> Server {
    let addr = free_port();
    let child = Command::new(&o.penpal)
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--plugin-dir",
            "target/plugins",
        ])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("PENPAL_SIGNUPS_PER_HOUR", "1000000")
        .env("PENPAL_METRICS_LISTEN", "off")
        .env("PENPAL_LLM_MODEL", "penpal-scripted")
        .env(
            "PENPAL_LOG",
            std::env::var("LOAD_SERVER_LOG").unwrap_or_else(|_| "error".into()),
        )
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (build it with cargo build --release -p penpal)",
                o.penpal.display()
            )
        });
    Server {
        child,
        base: format!("http://{addr}"),
        addr,
    }
}

/// Runs `penpal` with `args`; its stdout, or a panic with what it said.
fn cli(o: &Opts, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(&o.penpal)
        .args(args)
        .env("PENPAL_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "penpal {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Signs up `email` (a learner of French at B1 when `learner`); answers its access token.
async fn account(http: &reqwest::Client, base: &str, email: &str, learner: bool) -> String {
    let (status, r) = call(
        http,
        "POST",
        format!("{base}/v1/auth/register"),
        "",
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let token = r["access_token"].as_str().unwrap().to_string();
    if learner {
        call(
            http,
            "PATCH",
            format!("{base}/v1/me/profile"),
            &token,
            Some(json!({"native_language": "en", "targets": [{"language": "fr", "level": "B1"}]})),
        )
        .await;
    }
    token
}

async fn login(http: &reqwest::Client, base: &str, email: &str) -> String {
    let (status, r) = call(
        http,
        "POST",
        format!("{base}/v1/auth/login"),
        "",
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    r["access_token"].as_str().unwrap().to_string()
}

/// The confirmation token mailed to `to`, from the sink's files (quoted-printable undone).
async fn mailed_token(dir: &Path, to: &str) -> String {
    for _ in 0..300 {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if !raw.contains(&format!("To: {to}")) {
                continue;
            }
            let text = raw
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            if let Some(rest) = text.split("verify-email#token=").nth(1) {
                return rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no confirmation mail to {to}");
}

/// A WebAssembly custom section (id 0) named `name` holding `payload`: valid at the end of a
/// component, and ignored by everything that runs it.
fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend(name.as_bytes());
    body.extend(payload);
    let mut section = vec![0];
    leb(body.len(), &mut section);
    section.extend(body);
    section
}

/// `package` renamed `name` at `version` for publisher `ada`, signed with `key` into `work`;
/// answers the archive's path.
fn signed(o: &Opts, work: &Path, key: &Path, name: &str, version: &str) -> PathBuf {
    let dir = work.join(format!("{name}-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = std::fs::read_to_string(o.package.join("penpal-plugin.toml")).unwrap();
    let mut seen = [false; 3];
    let manifest: String = manifest
        .lines()
        .map(|line| {
            for (i, (k, v)) in [("name", name), ("version", version), ("publisher", "ada")]
                .into_iter()
                .enumerate()
            {
                if !seen[i] && line.starts_with(&format!("{k} = ")) {
                    seen[i] = true;
                    return format!("{k} = \"{v}\"\n");
                }
            }
            format!("{line}\n")
        })
        .collect();
    std::fs::write(dir.join("penpal-plugin.toml"), manifest).unwrap();
    // Each package's component is its own bytes, so the registry and B compile it afresh as
    // they would a new plugin, rather than finding it in their compile caches.
    let mut component = std::fs::read(o.package.join("plugin.wasm")).unwrap();
    component.extend(custom_section(
        "penpal-bench",
        format!("{name} {version}").as_bytes(),
    ));
    std::fs::write(dir.join("plugin.wasm"), component).unwrap();
    cli(
        o,
        &[
            "plugin",
            "sign",
            dir.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    dir.join(format!("{name}-{version}.penpal"))
}

/// One turn over HTTP with `personality`; its time in ms.
async fn turn(http: &reqwest::Client, base: &str, token: &str, personality: &str) -> f64 {
    let started = Instant::now();
    let (status, conv) = call(
        http,
        "POST",
        format!("{base}/v1/conversations"),
        token,
        Some(json!({"personality": personality, "mode": "tutor", "language": "fr"})),
    )
    .await;
    assert_eq!(status, 201, "{conv}");
    let (status, r) = call(
        http,
        "POST",
        format!(
            "{base}/v1/conversations/{}/messages",
            conv["id"].as_str().unwrap()
        ),
        token,
        Some(json!({"text": "Je va au cinema avec mon amis"})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    started.elapsed().as_secs_f64() * 1000.0
}

/// Times `f` in ms.
async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, f64) {
    let t = Instant::now();
    let v = f.await;
    (v, t.elapsed().as_secs_f64() * 1000.0)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(addr: SocketAddr, token: &str, conv: &str) -> Socket {
    let mut req = format!("ws://{addr}/v1/conversations/{conv}/live")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .expect("socket")
        .0
}

/// A turn's end: when it finished (since the run's start, ms), its first-delta latency (ms),
/// and whether it failed.
type Turn = (f64, f64, bool);

/// The first-delta latencies of the turns that succeeded and ended in `[from, to)`, sorted.
fn firsts(turns: &[Turn], from: f64, to: f64) -> Vec<f64> {
    let mut v: Vec<f64> = turns
        .iter()
        .filter(|t| !t.2 && t.0 >= from && t.0 < to)
        .map(|t| t.1)
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Learners chatting with bench-tutor on B, each on its socket, until [`Learners::finish`].
struct Learners {
    started: Instant,
    stop: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Turn>>>,
}

impl Learners {
    /// Signs up `--conversations` learners named `tag…`, opens a conversation each, and starts
    /// them chatting (staggered over one pause).
    async fn start(o: &Opts, http: &reqwest::Client, b: &Server, tag: &str) -> Learners {
        let mut users = Vec::new();
        for chunk in (0..o.conversations).collect::<Vec<_>>().chunks(8) {
            let batch = futures_util::future::join_all(chunk.iter().map(|i| {
                let (http, base) = (http.clone(), b.base.clone());
                async move {
                    let email = format!("{tag}{i}@example.com");
                    let token = account(&http, &base, &email, true).await;
                    let (_, c) = call(
                        &http,
                        "POST",
                        format!("{base}/v1/conversations"),
                        &token,
                        Some(json!({"personality": "bench-tutor", "mode": "tutor", "language": "fr"})),
                    )
                    .await;
                    (token, c["id"].as_str().expect("a conversation").to_string())
                }
            }))
            .await;
            users.extend(batch);
        }
        let started = Instant::now();
        let stop = Arc::new(AtomicU64::new(0));
        let count = users.len() as u32;
        let tasks = users
            .into_iter()
            .enumerate()
            .map(|(i, (token, conv))| {
                let (addr, stop) = (b.addr, stop.clone());
                let think = Duration::from_millis(o.think_ms);
                tokio::spawn(async move {
                    let mut ws = socket(addr, &token, &conv).await;
                    let mut turns: Vec<Turn> = Vec::new();
                    tokio::time::sleep(think * i as u32 / count).await;
                    let mut n = 0;
                    while stop.load(Ordering::Relaxed) == 0 {
                        n += 1;
                        let text = format!("Le weekend je va à le marché avec mon amis, tour {n}");
                        let sent = Instant::now();
                        let (ended, first) = penpal_load::chat_turn(&mut ws, &text).await;
                        let at = started.elapsed().as_secs_f64() * 1000.0;
                        let first = first.unwrap_or(sent.elapsed()).as_secs_f64() * 1000.0;
                        turns.push((at, first, ended != penpal_load::Ended::Complete));
                        match ended {
                            penpal_load::Ended::Complete => {}
                            penpal_load::Ended::Failed => {
                                eprintln!("market-load: a turn failed: conversation {conv}");
                            }
                            penpal_load::Ended::Closed => {
                                eprintln!("market-load: a socket closed: conversation {conv}");
                                return turns;
                            }
                        }
                        // Pauses vary ±50%, as people's do, so learners do not chat in lockstep.
                        let spread =
                            0.5 + f64::from((i as u32 * 7919 + n * 104_729) % 1000) / 1000.0;
                        tokio::time::sleep(think.mul_f64(spread)).await;
                    }
                    turns
                })
            })
            .collect();
        Learners {
            started,
            stop,
            tasks,
        }
    }

    /// Stops them after their current turn; every turn they had.
    async fn finish(self) -> Vec<Turn> {
        self.stop.store(1, Ordering::Relaxed);
        let mut turns = Vec::new();
        for t in self.tasks {
            turns.extend(t.await.unwrap());
        }
        turns
    }
}

#[tokio::main]
async fn main() {
    let o = <Opts as clap::Parser>::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let mail = work.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    let (mut sink, smtp) = penpal_load::start_sink(&o.python, &mail);
    let model_addr = free_port();
    let mut model = Command::new(&o.penpal)
        .args(["scripted-llm", "--listen", &model_addr.to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let llm = format!("http://{model_addr}/v1");

    // A: the registry.
    let a_data = work.path().join("a");
    let a = serve(
        &o,
        &a_data,
        &[
            ("PENPAL_DATABASE", "mem://".into()),
            ("PENPAL_SMTP_URL", format!("smtp://127.0.0.1:{smtp}")),
            ("PENPAL_PUBLIC_URL", "https://registry.test".into()),
            ("PENPAL_LLM_BASE_URL", llm.clone()),
        ],
        &[],
    );
    // B: installs from A. Its operator is made the documented way: sign up, stop the server,
    // `penpal admin grant-role`, start again.
    let b_data = work.path().join("b");
    let config = work.path().join("b.toml");
    std::fs::write(
        &config,
        format!("[marketplace]\nregistries = [\"{}\"]\n", a.base),
    )
    .unwrap();
    let b_env = [
        ("PENPAL_LLM_BASE_URL", llm.clone()),
        ("PENPAL_CONFIG", config.display().to_string()),
        ("PENPAL_PLUGIN_ALLOW_NETWORKS", "127.0.0.0/8".into()),
    ];
    let b = serve(&o, &b_data, &b_env, &[]);
    penpal_load::wait_ready(&http, &b.base).await;
    account(&http, &b.base, "ops@example.com", false).await;
    drop(b);
    cli(
        &o,
        &[
            "admin",
            "grant-role",
            "ops@example.com",
            "operator",
            "--data-dir",
            b_data.to_str().unwrap(),
        ],
        &[],
    );
    let b = serve(&o, &b_data, &b_env, &[]);
    penpal_load::wait_ready(&http, &a.base).await;
    penpal_load::wait_ready(&http, &b.base).await;
    let ops = login(&http, &b.base, "ops@example.com").await;

    // The publisher on A, with a key and a token.
    let ada = account(&http, &a.base, "ada@example.com", false).await;
    let token = mailed_token(&mail, "ada@example.com").await;
    let (status, r) = call(
        &http,
        "POST",
        format!("{}/v1/auth/verify-email", a.base),
        &ada,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = call(
        &http,
        "POST",
        format!("{}/v1/publishers", a.base),
        &ada,
        Some(json!({"slug": "ada", "name": "Ada"})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let key = work.path().join("ada.pem");
    let printed = cli(
        &o,
        &["key", "generate", "--out", key.to_str().unwrap()],
        &[],
    );
    let public = printed
        .lines()
        .find_map(|l| l.strip_prefix("public key"))
        .unwrap()
        .trim();
    let (status, r) = call(
        &http,
        "POST",
        format!("{}/v1/publishers/ada/keys", a.base),
        &ada,
        Some(json!({"public_key": public, "label": "load"})),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let (_, made) = call(
        &http,
        "POST",
        format!("{}/v1/publishers/ada/tokens", a.base),
        &ada,
        Some(json!({"label": "load"})),
    )
    .await;
    let publish_token = made["token"].as_str().unwrap().to_string();
    let publish = |archive: &Path| {
        cli(
            &o,
            &[
                "plugin",
                "publish",
                archive.to_str().unwrap(),
                "--registry",
                &a.base,
            ],
            &[("PENPAL_TOKEN", &publish_token)],
        )
    };
    let install = |name: &str| {
        call(
            &http,
            "POST",
            format!("{}/v1/marketplace/installs", b.base),
            &ops,
            Some(json!({"package": name, "registry": a.base})),
        )
    };
    let upgrade = |name: &str| {
        call(
            &http,
            "POST",
            format!("{}/v1/marketplace/installs/{name}/upgrade", b.base),
            &ops,
            Some(json!({})),
        )
    };
    let archives: Vec<(&str, &str, PathBuf)> = [
        ("bench-tutor", "1.0.0"),
        ("bench-tutor", "1.0.1"),
        ("bench-idle", "1.0.0"),
        ("bench-idle", "1.0.1"),
        ("bench-busy", "1.0.0"),
    ]
    .into_iter()
    .map(|(n, v)| (n, v, signed(&o, work.path(), &key, n, v)))
    .collect();
    let learner = account(&http, &b.base, "first@example.com", true).await;

    // 1. Publish → first call on B.
    eprintln!("market-load: publish → first call on another server…");
    let mut baseline = Vec::new();
    for _ in 0..5 {
        baseline.push(turn(&http, &b.base, &learner, "tutor").await);
    }
    baseline.sort_by(f64::total_cmp);
    let started = Instant::now();
    publish(&archives[0].2);
    let published = started.elapsed().as_secs_f64() * 1000.0;
    let ((status, view), installed) = timed(install("bench-tutor")).await;
    assert_eq!(status, 201, "{view}");
    let first = turn(&http, &b.base, &learner, "bench-tutor").await;
    let total = started.elapsed().as_secs_f64() * 1000.0;

    // Baselines with nobody chatting: an install and an upgrade of another package.
    publish(&archives[2].2);
    publish(&archives[4].2);
    let ((status, view), idle_install) = timed(install("bench-idle")).await;
    assert_eq!(status, 201, "{view}");
    publish(&archives[3].2);
    let ((status, view), idle_upgrade) = timed(upgrade("bench-idle")).await;
    assert_eq!(
        (status, view["version"].as_str()),
        (200, Some("1.0.1")),
        "{view}"
    );
    publish(&archives[1].2);

    // 2a. The control: N learners chatting with bench-tutor on sockets for three windows,
    // nothing installed or upgraded, so what conversations cost as they grow is known.
    let window = Duration::from_secs(o.seconds);
    eprintln!(
        "market-load: control: {} learners chatting on B…",
        o.conversations
    );
    let control = Learners::start(&o, &http, &b, "control").await;
    tokio::time::sleep(window * 3).await;
    let control_turns = control.finish().await;

    // 2b. N new learners, the same way, while B installs bench-busy and upgrades bench-tutor
    // under them.
    eprintln!("market-load: {} learners chatting on B…", o.conversations);
    let learners = Learners::start(&o, &http, &b, "learner").await;
    let run_start = learners.started;
    tokio::time::sleep(window).await;
    let install_at = run_start.elapsed().as_secs_f64() * 1000.0;
    let ((status, view), busy_install) = timed(install("bench-busy")).await;
    assert_eq!(status, 201, "{view}");
    tokio::time::sleep(window).await;
    let upgrade_at = run_start.elapsed().as_secs_f64() * 1000.0;
    let ((status, view), busy_upgrade) = timed(upgrade("bench-tutor")).await;
    assert_eq!(
        (status, view["version"].as_str()),
        (200, Some("1.0.1")),
        "{view}"
    );
    tokio::time::sleep(window).await;
    let turns = learners.finish().await;
    let failed = turns.iter().chain(&control_turns).filter(|t| t.2).count();
    let before = firsts(&turns, 0.0, install_at);
    let during_install = firsts(&turns, install_at, install_at + busy_install + 1000.0);
    let during_upgrade = firsts(&turns, upgrade_at, upgrade_at + busy_upgrade + 1000.0);
    let after = firsts(&turns, upgrade_at + busy_upgrade, f64::MAX);

    for child in [&mut model, &mut sink] {
        let _ = child.kill();
        let _ = child.wait();
    }
    drop((a, b));

    let base_turn = pct(&baseline, 0.5);
    println!("\n# Marketplace (two release servers, scripted model, this machine, this run)\n");
    println!("publish → first successful call on another server: {total:.0} ms");
    println!(
        "  publish (CLI, upload, checks, compile on the registry) {published:.0} ms · install on B (mirror, signature checked again, compile) {installed:.0} ms · first turn {first:.0} ms"
    );
    println!(
        "  baseline: a turn with a tutor B already runs, median of 5: {base_turn:.0} ms → publish to first call = {:.1}× a turn",
        total / base_turn
    );
    println!(
        "\nunder load: {} learners chatting on sockets with the tutor being upgraded ({} ms pauses), {} turns and {} in the control, {failed} failed",
        o.conversations,
        o.think_ms,
        turns.len(),
        control_turns.len()
    );
    println!(
        "  install of another package: {busy_install:.0} ms (idle, same run: {idle_install:.0} ms; ratio {:.2})",
        busy_install / idle_install
    );
    println!(
        "  upgrade of the tutor they chat with: {busy_upgrade:.0} ms (idle, same run: {idle_upgrade:.0} ms; ratio {:.2})",
        busy_upgrade / idle_upgrade
    );
    let row = |name: &str, v: &[f64]| {
        println!(
            "  first delta {name:<22} p50 {:>5.1} ms  p99 {:>6.1} ms  ({} turns; p50 {:.2}× before)",
            pct(v, 0.5),
            pct(v, 0.99),
            v.len(),
            pct(v, 0.5) / pct(&before, 0.5)
        )
    };
    row("before", &before);
    row("during the install", &during_install);
    row("during the upgrade", &during_upgrade);
    row("after", &after);
    let w = window.as_secs_f64() * 1000.0;
    let (control_before, control_after) = (
        firsts(&control_turns, 0.0, w),
        firsts(&control_turns, 2.0 * w, f64::MAX),
    );
    println!(
        "  control, the same learners' run with no install or upgrade ({} turns): first delta p50 {:.1} ms in the first window, {:.1} ms in the last ({:.2}×)",
        control_turns.len(),
        pct(&control_before, 0.5),
        pct(&control_after, 0.5),
        pct(&control_after, 0.5) / pct(&control_before, 0.5)
    );
    if failed > 0 {
        eprintln!("market-load: {failed} turns failed");
        std::process::exit(1);
    }
}
