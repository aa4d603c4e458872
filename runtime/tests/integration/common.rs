//! Shared by the integration tests: where the built plugins are, a host to load them on, and
//! learners and turn contexts to call them with.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mail_parser::{Message, MessageParser};
use std::time::Duration;

use std::sync::Arc;

use penpal::plugins::{Capabilities, CompileCache, Limits, PluginHost, Services};
use penpal::tutoring::tutor::{
    CefrLevel, ChatMode, CorrectionIntensity, LearnerProfile, TurnContext, TutorClient,
};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime/ has a parent")
        .to_path_buf()
}

fn built(dir: &str, name: &str) -> PathBuf {
    let path = repo().join("target").join(dir).join(name);
    assert!(
        path.join("plugin.wasm").is_file(),
        "{} is not built: run `cargo xtask build-plugins` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// A first-party plugin package, built by xtask.
pub fn plugin(name: &str) -> PathBuf {
    built("plugins", name)
}

/// A test guest package, built by xtask.
pub fn guest(name: &str) -> PathBuf {
    built("test-plugins", name)
}

/// A compile cache shared by every test, so each component compiles once per run.
pub fn cache() -> CompileCache {
    CompileCache::at(repo().join("target").join("test-compile-cache"))
}

/// A host with `limits` and `services`.
pub fn host_with(limits: Limits, services: Services) -> Arc<PluginHost> {
    Arc::new(PluginHost::new(limits, cache(), services).expect("engine starts"))
}

/// A host with default limits and services.
pub fn host() -> Arc<PluginHost> {
    host_with(Limits::default(), Services::default())
}

/// The tutoring room's client for `host`'s tutors.
pub fn tutors(host: &Arc<PluginHost>) -> TutorClient {
    TutorClient::new(host.clone())
}

/// Installs the package at `path` on `host`, granting nothing.
pub fn install(host: &PluginHost, path: &Path) {
    host.install_path(path, &Capabilities::default())
        .unwrap_or_else(|e| panic!("{} loads: {e}", path.display()));
}

/// A learner of `target` at `level`, native in English.
pub fn learner(target: &str, level: CefrLevel, intensity: CorrectionIntensity) -> LearnerProfile {
    LearnerProfile {
        display_name: "Ana".into(),
        native_language: "en".into(),
        target_language: target.into(),
        level,
        goals: vec!["travel".into()],
        interests: vec!["cooking".into(), "football".into()],
        correction_intensity: intensity,
    }
}

/// A turn of `mode` in which a French learner at `level` says `message`.
pub fn turn(message: &str, level: CefrLevel, mode: ChatMode) -> TurnContext {
    TurnContext {
        profile: learner("fr", level, CorrectionIntensity::EveryError),
        mode,
        scenario: None,
        topic: None,
        history: vec![],
        memory: None,
        pinned: vec![],
        message: message.into(),
        turn: 3,
    }
}

/// Awaits `f`, failing the test with `what` after `secs` seconds.
pub async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs}s: {what}"))
}

/// Runs the `penpal` binary with `args`; returns (success, stdout, stderr).
pub fn penpal(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_penpal"))
        .args(args)
        .env("PENPAL_LOG", "warn")
        // `plugin check` keeps compiled components in the user's cache: the tests' own here.
        .env(
            "XDG_CACHE_HOME",
            repo().join("target").join("test-author-cache"),
        )
        .output()
        .expect("penpal runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One HTTP/1.1 GET on loopback; returns the status and the JSON body.
pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
    get_as(addr, path, None).await
}

/// One HTTP/1.1 GET on loopback with a bearer `token`; the status and the JSON body.
pub async fn get_as(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within(10, &format!("GET {path}"), async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("writes");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("reads");
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("a response");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    })
    .await
}

/// The data of a chunked body; a body cut short keeps what arrived whole.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail.get(n + 2..).unwrap_or_default();
    }
    out
}

/// One HTTP/1.1 POST of JSON on loopback; returns the status and the body (de-chunked).
pub async fn post_json(
    addr: std::net::SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within(20, &format!("POST {path}"), async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("writes");
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("a response");
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, body)
    })
    .await
}

/// `penpal serve` settings for a test: port 0, `mem://` database, the first-party plugins,
/// the scripted model started by the server itself unless `llm` names one.
pub fn serve_args(data_dir: &Path, llm: Option<String>) -> penpal::config::ServeArgs {
    use penpal::config::{AppArgs, LlmArgs, PluginArgs, ServeArgs};
    ServeArgs {
        listen: "127.0.0.1:0".parse().expect("an address"),
        metrics_listen: penpal::config::MetricsListen::Off,
        llm: LlmArgs {
            llm_base_url: llm,
            llm_api_key: None,
            llm_model: "penpal-scripted".into(),
            llm_timeout_ms: 30_000,
            llm_retries: 2,
        },
        plugins: PluginArgs {
            data_dir: data_dir.to_path_buf(),
            plugin_dirs: vec![repo().join("target/plugins")],
            config: None,
            plugin_memory_mib: 64,
            plugin_cpu_ms: 200,
            plugin_timeout_ms: 5000,
            plugin_output_kib: 1024,
            plugin_allow_networks: Vec::new(),
        },
        app: AppArgs {
            db: penpal::config::DatabaseArgs {
                database: Some("mem://".into()),
                ..Default::default()
            },
            ..AppArgs::default()
        },
        mail: penpal::config::MailArgs::default(),
    }
}

/// A server running in the current actix system.
pub struct Running {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<actix_rt::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `ws://addr` + `path`.
    pub fn ws(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = within(20, "server stops", h).await;
        }
    }
}

/// Starts `penpal serve` with `args` and waits until it answers.
pub async fn start(args: penpal::config::ServeArgs) -> Running {
    launch(args, None).await
}

/// Starts `penpal serve` on `db`, which the test keeps a handle on (to do what an operator's
/// command would, such as granting a role).
pub async fn start_on(args: penpal::config::ServeArgs, db: penpal::store::Db) -> Running {
    launch(args, Some(db)).await
}

async fn launch(args: penpal::config::ServeArgs, db: Option<penpal::store::Db>) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let handle = match db {
        Some(db) => actix_rt::spawn(penpal::server::run_on(listener, args, db, shutdown)),
        None => actix_rt::spawn(penpal::server::run(listener, args, shutdown)),
    };
    let running = Running {
        addr,
        stop: Some(stop),
        handle: Some(handle),
    };
    within(60, "server answers /healthz", async {
        loop {
            if let Ok(r) = http().get(running.url("/healthz")).send().await
                && r.status().as_u16() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    running
}

/// Waits (up to a minute: compiling plugins on a busy machine takes a while) until the server
/// at `addr` answers `/healthz` with 200.
pub async fn wait_until_up(addr: std::net::SocketAddr) {
    within(60, "the server answers /healthz", async {
        loop {
            if let Ok(r) = http().get(format!("http://{addr}/healthz")).send().await
                && r.status().as_u16() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Signs up Ana on the server at `base` and sets her profile (English speaker learning French
/// at `level`, every error corrected); answers her bearer token.
pub async fn new_learner(base: &str, level: &str) -> String {
    let http = http();
    let signed_up = http
        .post(format!("{base}/v1/auth/register"))
        .json(&serde_json::json!({"email": "ana@example.com", "password": "correct horse battery", "display_name": "Ana"}))
        .send()
        .await
        .expect("sign-up answers");
    assert_eq!(signed_up.status().as_u16(), 201);
    let body: serde_json::Value = signed_up.json().await.expect("JSON");
    let token = body["access_token"].as_str().expect("a token").to_string();
    let profile = serde_json::json!({"native_language": "en", "targets": [{"language": "fr", "level": level}],
                                     "correction_intensity": "every_error"});
    let status = http
        .patch(format!("{base}/v1/me/profile"))
        .bearer_auth(&token)
        .json(&profile)
        .send()
        .await
        .expect("profile answers")
        .status();
    assert_eq!(status.as_u16(), 200);
    token
}

/// An HTTP client for tests: rustls ready, a minute per request.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// `penpal serve` as a process of its own, so a restart is a real one.
pub struct Process {
    child: std::process::Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
}

impl Process {
    /// Starts `penpal serve` on `data` (embedded database) with extra environment `env`.
    pub async fn start(data: &std::path::Path, env: &[(&str, &str)]) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_penpal"))
            .args(["serve", "--listen", &addr.to_string(), "--plugin-dir"])
            .arg(repo().join("target/plugins"))
            .arg("--data-dir")
            .arg(data)
            // Many servers run at once: metrics only where a test asks for them.
            .env("PENPAL_METRICS_LISTEN", "off")
            .envs(env.iter().copied())
            .env("PENPAL_LOG", "warn")
            .env_remove("PENPAL_DATABASE")
            .env_remove("PENPAL_LLM_BASE_URL")
            .spawn()
            .unwrap();
        within(120, "penpal serve answers", async {
            loop {
                if let Ok(r) = http().get(format!("http://{addr}/readyz")).send().await
                    && r.status().as_u16() == 200
                {
                    return;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "penpal serve exited before it answered ({status}); its stderr is above"
                    );
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
        .await;
        Process { child, addr }
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "penpal serve exits cleanly on SIGTERM: {status}"
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// An operator's access token on the server at `addr` that uses `db`: an account signed up
/// over HTTP, given the role as `penpal admin grant-role` does, then signed in.
pub async fn operator_token(addr: std::net::SocketAddr, db: &penpal::store::Db) -> String {
    let account =
        serde_json::json!({"email": "ops@example.com", "password": "correct horse battery"});
    let (status, body) = post_json(addr, "/v1/auth/register", &account).await;
    assert_eq!(status, 201, "{body}");
    penpal::auth::admin::grant_role(db, "ops@example.com", penpal::auth::Role::Operator)
        .await
        .expect("the role is granted");
    let (status, body) = post_json(addr, "/v1/auth/login", &account).await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    body["access_token"].as_str().expect("a token").to_string()
}

/// A real SMTP server on loopback (aiosmtpd, `runtime/tests/smtp/sink.py`, installed by
/// `cargo xtask test` into `target/smtp`), running until dropped.
pub struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    /// Starts it.
    pub fn start() -> Sink {
        use std::io::BufRead;
        let python = repo().join("target/smtp/bin/python");
        assert!(
            python.is_file(),
            "aiosmtpd is not installed: run `cargo xtask test` (it installs it into target/smtp)"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python)
            .arg(repo().join("runtime/tests/smtp/sink.py"))
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("the SMTP sink did not start: {line:?}"))
            .parse()
            .unwrap();
        Sink { child, port, dir }
    }

    /// Its URL for `PENPAL_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
    }

    /// Waits until `n` messages have arrived, and returns every one's raw bytes.
    pub async fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        within(30, &format!("{n} messages reach the SMTP server"), async {
            loop {
                let files = self.files();
                if files.len() >= n {
                    return files.iter().map(|f| std::fs::read(f).unwrap()).collect();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
    }
}

impl Sink {
    /// Waits until a message to `address` has arrived, and returns its raw bytes.
    pub async fn wait_for_mail_to(&self, address: &str) -> Vec<u8> {
        within(30, &format!("a message to {address} arrives"), async {
            loop {
                for file in self.files() {
                    let raw = std::fs::read(&file).unwrap();
                    if to(&parse(&raw)).as_deref() == Some(address) {
                        return raw;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
    }
}

/// The first recipient of `m`.
pub fn to(m: &Message<'_>) -> Option<String> {
    m.to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string)
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `raw` parsed as a mail client would.
pub fn parse(raw: &[u8]) -> Message<'_> {
    MessageParser::default().parse(raw).expect("a message")
}

impl Sink {
    /// Where the messages are written, one `.eml` file each.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The text of the mail to `to` titled `subject`, waiting for it.
pub async fn mail(sink: &Sink, to: &str, subject: &str) -> String {
    within(30, &format!("{subject:?} to {to}"), async {
        loop {
            for f in sink.files() {
                let raw = std::fs::read(&f).unwrap();
                let m = parse(&raw);
                if crate::common::to(&m).as_deref() == Some(to) && m.subject() == Some(subject) {
                    return m.body_text(0).unwrap().to_string();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
}
