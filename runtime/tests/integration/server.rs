//! `penpal serve` on a loopback port: health, the plugin list, and plugins installed while it
//! runs reaching it without a restart.

use std::time::Duration;

use crate::common::*;
use penpal::config::ServeArgs;

fn args(data_dir: &std::path::Path) -> ServeArgs {
    serve_args(data_dir, None)
}

async fn versions(addr: std::net::SocketAddr, op: &str) -> Vec<(String, String)> {
    let (status, body) = get_as(addr, "/v1/plugins", Some(op)).await;
    assert_eq!(status, 200);
    body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn wait_for_version(addr: std::net::SocketAddr, op: &str, name: &str, version: &str) {
    within(30, &format!("{name} {version} served"), async {
        loop {
            if versions(addr, op)
                .await
                .contains(&(name.to_string(), version.to_string()))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}

#[actix_rt::test]
async fn serves_health_and_plugins_and_picks_up_new_installs() {
    let data = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let db = penpal::store::Db::connect("mem://", None).await.unwrap();
    let server = actix_rt::spawn(penpal::server::run_on(
        listener,
        args(data.path()),
        db.clone(),
        async {
            let _ = stopped.await;
        },
    ));

    wait_until_up(addr).await;
    let (status, body) = get(addr, "/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!((status, body["tutors"].as_u64()), (200, Some(3)));
    let op = operator_token(addr, &db).await;
    // With no model configured, the scripted one answers, and the operator's view says so.
    let (_, body) = get_as(addr, "/v1/admin/status", Some(&op)).await;
    assert_eq!(body["llm"]["scripted"], true);
    assert_eq!(body["llm"]["model"], "penpal-scripted");
    let listed = versions(addr, &op).await;
    for name in ["partner", "roleplay", "tutor"] {
        assert!(
            listed.contains(&(name.to_string(), "0.1.0".to_string())),
            "{listed:?}"
        );
    }
    let (_, body) = get_as(addr, "/v1/plugins", Some(&op)).await;
    assert_eq!(body["plugins"][0]["health"]["status"], "ok");
    let (status, body) = get(addr, "/v1/nothing-here").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // An operator installs a plugin, then a new version of it, while the server runs.
    let data_dir = data.path().to_str().unwrap();
    for (pkg, version) in [("echo", "1.0.0"), ("echo-v2", "2.0.0")] {
        let (ok, _, err) = penpal(&[
            "plugin",
            "install",
            guest(pkg).to_str().unwrap(),
            "--data-dir",
            data_dir,
        ]);
        assert!(ok, "{err}");
        wait_for_version(addr, &op, "echo", version).await;
    }

    stop.send(()).unwrap();
    within(10, "server stops", server).await.unwrap().unwrap();
}

#[actix_rt::test]
async fn not_ready_without_a_tutor() {
    let data = tempfile::tempdir().unwrap();
    let mut args = args(data.path());
    args.plugins.plugin_dirs.clear();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = actix_rt::spawn(penpal::server::run(listener, args, async {
        let _ = stopped.await;
    }));
    wait_until_up(addr).await;
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["reason"], "no tutor plugin is loaded");
    stop.send(()).unwrap();
    within(10, "server stops", server).await.unwrap().unwrap();
}

#[test]
fn operator_grants_reach_bundled_plugins_by_their_name() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("penpal.toml");
    std::fs::write(
        &config,
        "[plugins.socrates]\ngrant = { kv = true, llm = true }\nsettings = { greeting = \"Salve\" }\n",
    )
    .unwrap();
    let mut args = args(data.path()).plugins;
    // The package directory is `tutor-rust`; the plugin inside is named `socrates`.
    args.plugin_dirs = vec![repo().join("target/example-plugins")];
    args.config = Some(config.clone());
    let host = penpal::server::load_plugins(&args, None, None).unwrap();
    let socrates = host.get("socrates").expect("the example plugin loads");
    assert!(socrates.identity.granted.kv, "granted and requested");
    assert!(!socrates.identity.granted.llm, "granted but not requested");

    std::fs::write(
        &config,
        "[plugins.socrates]\ngrant = { filesystem = true }\n",
    )
    .unwrap();
    let err = penpal::server::load_plugins(&args, None, None)
        .err()
        .expect("a bad operator file stops start-up");
    assert!(
        err.to_string().contains("unknown field `filesystem`"),
        "{err}"
    );
}
