//! Misbehaving plugins fail their own calls, with a clear error, while the host keeps serving
//! everyone else — and every failure is counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use penpal::plugins::PluginError;
use penpal::plugins::{
    CallError, Capabilities, Limits, Package, PluginConfig, PluginHost, Secret, Services,
};
use penpal::tutoring::tutor::{CefrLevel, ChatMode};

fn strict_limits() -> Limits {
    Limits {
        memory_bytes: 32 << 20,
        cpu: Duration::from_millis(100),
        wall: Duration::from_secs(2),
        output_bytes: 1 << 20,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misbehaving_plugin_fails_only_its_own_call() {
    let host = host_with(strict_limits(), Services::default());
    for name in ["looper", "hog", "panicker", "sleeper", "bigmouth"] {
        install(&host, &guest(name));
    }
    install(&host, &plugin("tutor"));
    let ctx = turn("Bonjour, je suis Ana", CefrLevel::A2, ChatMode::Tutor);

    let client = tutors(&host);
    let (looper, hog, panicker, sleeper, bigmouth, tutor) = within(30, "all calls end", async {
        tokio::join!(
            client.plan_turn("looper", &ctx),
            client.plan_turn("hog", &ctx),
            client.plan_turn("panicker", &ctx),
            client.plan_turn("sleeper", &ctx),
            client.plan_turn("bigmouth", &ctx),
            client.plan_turn("tutor", &ctx),
        )
    })
    .await;

    assert!(
        matches!(looper, Err(CallError::CpuExceeded { .. })),
        "{looper:?}"
    );
    assert!(
        matches!(hog, Err(CallError::OutOfMemory { cap_mib: 32, .. })),
        "{hog:?}"
    );
    match panicker {
        Err(CallError::Trap { message, .. }) => {
            assert!(
                message.contains("the tutor fell over on turn 3"),
                "{message}"
            )
        }
        other => panic!("panicker: {other:?}"),
    }
    assert!(
        matches!(sleeper, Err(CallError::Timeout { .. })),
        "{sleeper:?}"
    );
    assert!(
        matches!(bigmouth, Err(CallError::OutputTooLarge { size, limit: 1048576, .. }) if size > 8_000_000),
        "{bigmouth:?}"
    );
    let plan = tutor.expect("the tutor answers while the others fail");
    assert!(plan.analysis.is_some());

    // Each failure is counted against its own plugin, and only there.
    let report = |name: &str| host.get(name).expect(name).identity.health.report();
    assert_eq!(report("looper").cpu_exceeded, 1);
    assert_eq!(report("hog").out_of_memory, 1);
    assert_eq!(report("panicker").traps, 1);
    assert_eq!(report("sleeper").timeouts, 1);
    assert_eq!(report("bigmouth").output_too_large, 1);
    let tutor = report("tutor");
    assert_eq!((tutor.calls, tutor.ok, tutor.consecutive_faults), (1, 1, 0));
    assert_eq!(report("looper").status, "degraded");

    // And the host still serves the same plugins afterwards.
    assert!(tutors(&host).plan_turn("tutor", &ctx).await.is_ok());
    assert!(matches!(
        tutors(&host).plan_turn("looper", &ctx).await,
        Err(CallError::CpuExceeded { .. })
    ));
}

#[tokio::test]
async fn errors_name_the_plugin_and_the_limit() {
    let host = host_with(strict_limits(), Services::default());
    install(&host, &guest("looper"));
    let err = tutors(&host)
        .plan_turn("looper", &turn("x", CefrLevel::B1, ChatMode::Tutor))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `looper` used more than its CPU budget of 100ms"
    );
    let err = tutors(&host)
        .plan_turn("nobody", &turn("x", CefrLevel::B1, ChatMode::Tutor))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "no plugin named `nobody` is installed");
}

/// The snoop's report, one `capability=answer` per line.
async fn snoop(host: &Arc<PluginHost>, name: &str, key: &str) -> BTreeMap<String, String> {
    let plan = tutors(host)
        .plan_turn(name, &turn(key, CefrLevel::B1, ChatMode::Tutor))
        .await
        .expect("snoop answers");
    plan.reply.messages[0]
        .content
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn ungranted_capabilities_answer_denied() {
    let host = host();
    install(&host, &guest("snoop"));
    let seen = snoop(&host, "snoop", "notes").await;
    for cap in [
        "secret.api_key",
        "secret.other",
        "kv.set",
        "kv.get",
        "kv.list",
        "llm",
    ] {
        assert_eq!(seen[cap], "denied", "{cap}: {seen:?}");
    }
    assert_eq!(seen["setting"], "None");
    let health = host.get("snoop").unwrap().identity.health.report();
    // The six above, and the secret it first tries to log.
    assert_eq!(health.denied, 7);

    // A guest that passes the denial on fails its own call with it.
    let err = tutors(&host)
        .review_turn(
            "snoop",
            &turn("k", CefrLevel::B1, ChatMode::Tutor),
            "",
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Plugin { error: PluginError::Denied(m), .. } if m.contains("kv store")),
        "{err:?}"
    );
}

/// Log output captured in memory.
#[derive(Clone, Default)]
struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn granted_capabilities_work_and_stay_within_what_was_requested() {
    let config = HashMap::from([(
        "snoop".to_string(),
        PluginConfig {
            settings: BTreeMap::from([("greeting".into(), "salut".into())]),
            secrets: BTreeMap::from([
                ("api_key".into(), Secret::new("s3cret")),
                ("other".into(), Secret::new("not for snoop")),
            ]),
        },
    )]);
    let host = host_with(
        Limits::default(),
        Services {
            config: Arc::new(config),
            ..Services::default()
        },
    );
    // The installer grants more than the manifest asks (another secret): only the
    // intersection is linked.
    let grants = Capabilities {
        kv: true,
        llm: true,
        secrets: vec![
            "api_key".to_string().try_into().unwrap(),
            "other".to_string().try_into().unwrap(),
        ],
        http: vec![],
    };
    host.install_path(&guest("snoop"), &grants).unwrap();
    let logs = LogCapture::default();
    let seen = {
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(logs.clone())
                .finish(),
        );
        snoop(&host, "snoop", "notes").await
    };
    let logged = logs.text();
    assert!(logged.contains("using api_key=<redacted>"), "{logged}");
    assert!(!logged.contains("s3cret"), "a secret reached the log");
    assert!(logged.contains("snoop line 62"));
    assert!(
        !logged.contains("snoop line 63"),
        "lines past the per-call cap are dropped"
    );
    assert!(logged.contains("plugin logs too much"));
    assert_eq!(seen["setting"], "Some(\"salut\")");
    assert_eq!(seen["secret.api_key"], "ok:\"s3cret\"");
    assert_eq!(
        seen["secret.other"], "denied",
        "not requested in the manifest"
    );
    assert_eq!(seen["kv.set"], "ok:()");
    assert_eq!(seen["kv.get"], "ok:Some(\"remembered\")");
    assert_eq!(seen["kv.list"], "ok:[\"notes\"]");
    assert_eq!(
        seen["llm"], "unavailable",
        "granted, but this host has no model"
    );
}

#[tokio::test]
async fn a_plugin_sees_only_its_own_keys() {
    let host = host();
    let grants = Capabilities {
        kv: true,
        ..Capabilities::default()
    };
    host.install_path(&guest("snoop"), &grants).unwrap();
    // The same component installed under another name is another tenant of the kv store.
    let mut twin = Package::open(&guest("snoop")).unwrap();
    twin.manifest.plugin.name = "snoop-twin".to_string().try_into().unwrap();
    host.install(host.load(&twin, &grants).unwrap());

    snoop(&host, "snoop", "mine").await;
    let twin_view = snoop(&host, "snoop-twin", "theirs").await;
    assert_eq!(twin_view["kv.list"], "ok:[\"theirs\"]");
    let own_view = snoop(&host, "snoop", "mine").await;
    assert_eq!(own_view["kv.list"], "ok:[\"mine\"]");
}

#[tokio::test]
async fn a_component_must_implement_the_world_its_manifest_names() {
    let host = host();
    let err = host
        .install_path(&guest("notutor"), &Capabilities::default())
        .err()
        .expect("refused");
    assert_eq!(
        err.to_string(),
        "the manifest says kind = \"tutor\", but the component implements the notifier world"
    );
}

/// A loopback HTTP server that answers every request with `hello from <path>`; returns its
/// port and a counter of requests it received.
/// The port the fetcher guest's manifest requests (`http://localhost:18481`).
const FETCH_PORT: u16 = 18481;

async fn hello_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // IPv4 only: where `localhost` also resolves to ::1, that connection is refused and the
    // host moves on to the next address.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", FETCH_PORT))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split(' ').nth(1).unwrap_or("?").to_string();
                let body = format!("hello from {path}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, hits)
}

async fn fetch(host: &Arc<PluginHost>, url: &str) -> String {
    let plan = within(
        20,
        "fetch",
        tutors(host).plan_turn("fetcher", &turn(url, CefrLevel::B1, ChatMode::Tutor)),
    )
    .await
    .expect("fetcher answers");
    plan.reply.messages[0].content.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_reaches_only_granted_hosts() {
    let (port, hits) = hello_server().await;
    let grant = |list: &[&str]| Capabilities {
        http: list
            .iter()
            .map(|h| h.to_string().try_into().unwrap())
            .collect(),
        ..Capabilities::default()
    };
    // Tests reach loopback only because the operator allows that network.
    let loopback = Services {
        allowed_networks: Arc::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]),
        ..Services::default()
    };
    let granted = host_with(Limits::default(), loopback.clone());
    granted
        .install_path(&guest("fetcher"), &grant(&["http://localhost:18481"]))
        .unwrap();
    assert_eq!(
        fetch(&granted, &format!("http://localhost:{port}/lesson?id=7")).await,
        "ok 200 hello from /lesson?id=7"
    );
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    // An address is never a grant; another port, or https where http was granted, is not
    // what was granted.
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{}/", port + 1),
        format!("https://localhost:{port}/"),
    ] {
        assert_eq!(fetch(&granted, &url).await, "err denied", "{url}");
    }

    // Granted, but the name resolves to loopback and the operator allows no such network.
    let public_only = host();
    public_only
        .install_path(&guest("fetcher"), &grant(&["http://localhost:18481"]))
        .unwrap();
    assert_eq!(
        fetch(&public_only, &format!("http://localhost:{port}/")).await,
        "err denied"
    );

    // Requested but not granted: denied before any connection is made.
    let ungranted = host_with(Limits::default(), loopback);
    install(&ungranted, &guest("fetcher"));
    assert_eq!(
        fetch(&ungranted, &format!("http://localhost:{port}/")).await,
        "err denied"
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "only the granted request arrived"
    );
    assert_eq!(
        ungranted
            .get("fetcher")
            .unwrap()
            .identity
            .health
            .report()
            .denied,
        1
    );
    assert_eq!(
        public_only
            .get("fetcher")
            .unwrap()
            .identity
            .health
            .report()
            .denied,
        1
    );
}

/// What the server's log receives, for one test thread.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A plugin's log lines and crash text are its own: newlines and terminal escapes in them are
/// escaped, and every line names the plugin.
#[tokio::test]
async fn a_plugin_cannot_forge_server_log_lines() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let host = host();
    install(&host, &guest("panicker"));
    let forged = "hi\n2026-12-01T00:00:00.000000Z  INFO penpal::server: FORGED-BY-PLUGIN \u{1b}[2J";
    let err = tutors(&host)
        .plan_turn("panicker", &turn(forged, CefrLevel::A2, ChatMode::Tutor))
        .await
        .unwrap_err();
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("FORGED-BY-PLUGIN"), "{log}");
    for line in log.lines().filter(|l| l.contains("FORGED-BY-PLUGIN")) {
        assert!(
            line.contains("panicker"),
            "the line names its plugin: {line}"
        );
        assert!(
            line.contains("hi\\n2026-12-01"),
            "the newline is escaped: {line}"
        );
    }
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-01T00:00:00")),
        "no line of the plugin's own making: {log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "no terminal escape reaches the log"
    );
    match err {
        CallError::Trap { message, .. } => {
            assert!(
                !message.contains('\n') && !message.contains('\u{1b}'),
                "{message}"
            );
            assert!(message.contains("FORGED-BY-PLUGIN"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
