//! Plugin life cycles: hot swap under load, the supervisor's circuit breaker, and the compile
//! cache that spares a restart from recompiling.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::*;
use penpal::actors::supervisor::{BreakerPolicy, Install, ListPlugins, PluginSupervisor};
use penpal::plugins::bindings::v0_2;
use penpal::plugins::health::Breaker;
use penpal::plugins::{
    CacheOutcome, CallError, Capabilities, CompileCache, Limits, Package, PluginHost, Services,
};
use penpal::tutoring::tutor::{CefrLevel, ChatMode};

fn reply_text(plan: &penpal::tutoring::tutor::TurnPlan) -> String {
    plan.reply.messages[0].content.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_keep_succeeding_while_a_new_version_is_installed() {
    let host = host();
    install(&host, &guest("echo"));
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for i in 0..4 {
        let (host, stop) = (host.clone(), stop.clone());
        callers.push(tokio::spawn(async move {
            let ctx = turn(&format!("caller {i}"), CefrLevel::B1, ChatMode::Tutor);
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let plan = tutors(&host)
                    .plan_turn("echo", &ctx)
                    .await
                    .expect("no call fails during a swap");
                seen.push(reply_text(&plan));
                tokio::task::yield_now().await;
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let old = host.get("echo").unwrap();
    // Load (compile) off the async threads, as the supervisor does.
    let swap_host = host.clone();
    tokio::task::spawn_blocking(move || {
        swap_host
            .install_path(&guest("echo-v2"), &Capabilities::default())
            .unwrap()
    })
    .await
    .unwrap();
    // New calls reach the new version at once…
    let plan = tutors(&host)
        .plan_turn("echo", &turn("after", CefrLevel::B1, ChatMode::Tutor))
        .await
        .unwrap();
    assert_eq!(reply_text(&plan), "echo 2.0.0: after");
    // …while whoever still holds the old version can still call it, and it answers as v1.
    assert_eq!(old.manifest.plugin.version.to_string(), "1.0.0");
    let held = turn("held", CefrLevel::B1, ChatMode::Tutor);
    let ctx = &held;
    let on_old = host
        .call(
            &old,
            "plan-turn",
            |t: v0_2::tutor::Tutor, mut store| async move {
                let r = t
                    .penpal_plugin_tutoring()
                    .call_plan_turn(&mut store, ctx)
                    .await;
                (store, penpal::plugins::lift(r))
            },
        )
        .await
        .unwrap();
    assert_eq!(reply_text(&on_old), "echo 1.0.0: held");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for (i, caller) in callers.into_iter().enumerate() {
        let seen = within(10, "caller stops", caller).await.unwrap();
        assert!(seen.len() > 2, "caller {i} made calls");
        let first_new = seen
            .iter()
            .position(|s| s.starts_with("echo 2.0.0"))
            .expect("reached v2");
        assert!(
            seen[..first_new]
                .iter()
                .all(|s| s == &format!("echo 1.0.0: caller {i}"))
        );
        assert!(
            seen[first_new..]
                .iter()
                .all(|s| s == &format!("echo 2.0.0: caller {i}")),
            "never back to v1"
        );
    }
}

async fn wait_for(host: &PluginHost, name: &str, state: Breaker) {
    within(5, &format!("{name} breaker {state:?}"), async {
        while host.get(name).unwrap().identity.health.breaker() != state {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[actix_rt::test]
async fn a_failing_plugin_is_put_behind_a_breaker_and_let_out_when_it_recovers() {
    let host = host();
    install(&host, &guest("panicker"));
    install(&host, &plugin("tutor"));
    let policy = BreakerPolicy {
        faults_to_open: 3,
        cool_down: Duration::from_millis(300),
        max_cool_down: Duration::from_secs(10),
    };
    let supervisor = PluginSupervisor::launch(host.clone(), policy, None);
    let crash = turn("crash", CefrLevel::B1, ChatMode::Tutor);
    let behave = turn("behave", CefrLevel::B1, ChatMode::Tutor);

    for _ in 0..3 {
        assert!(matches!(
            tutors(&host).plan_turn("panicker", &crash).await,
            Err(CallError::Trap { .. })
        ));
    }
    wait_for(&host, "panicker", Breaker::Open).await;
    match tutors(&host).plan_turn("panicker", &behave).await {
        Err(CallError::CircuitOpen { retry_in, .. }) => {
            assert!(retry_in <= Duration::from_millis(300))
        }
        other => panic!("expected the breaker to refuse: {other:?}"),
    }
    // Other plugins are untouched.
    assert!(tutors(&host).plan_turn("tutor", &behave).await.is_ok());

    // After the cool-down one probe goes through; it fails, so the breaker opens again.
    wait_for(&host, "panicker", Breaker::HalfOpen).await;
    assert!(matches!(
        tutors(&host).plan_turn("panicker", &crash).await,
        Err(CallError::Trap { .. })
    ));
    wait_for(&host, "panicker", Breaker::Open).await;

    // The next probe succeeds: the breaker closes and calls flow again.
    wait_for(&host, "panicker", Breaker::HalfOpen).await;
    let probe = tutors(&host).plan_turn("panicker", &behave).await;
    assert!(probe.is_ok(), "{probe:?}");
    wait_for(&host, "panicker", Breaker::Closed).await;
    assert!(tutors(&host).plan_turn("panicker", &behave).await.is_ok());

    let list = supervisor.send(ListPlugins).await.unwrap();
    let panicker = list.iter().find(|p| p.name == "panicker").unwrap();
    assert_eq!(panicker.health.traps, 4);
    assert_eq!(panicker.health.refused, 1);
    assert_eq!(panicker.health.status, "ok");
}

#[actix_rt::test]
async fn the_supervisor_installs_new_versions() {
    let host = host();
    install(&host, &guest("echo"));
    let supervisor = PluginSupervisor::launch(host.clone(), BreakerPolicy::default(), None);
    let status = supervisor
        .send(Install {
            path: guest("echo-v2"),
            grants: Capabilities::default(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.version, "2.0.0");
    let plan = tutors(&host)
        .plan_turn("echo", &turn("hi", CefrLevel::B1, ChatMode::Tutor))
        .await
        .unwrap();
    assert_eq!(reply_text(&plan), "echo 2.0.0: hi");
    let err = supervisor
        .send(Install {
            path: guest("notutor"),
            grants: Capabilities::default(),
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.contains("notifier world"), "{err}");
}

#[test]
fn a_restart_loads_compiled_plugins_from_the_cache() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("cache");
    let package = Package::open(&plugin("partner")).unwrap();
    let load = || {
        let host = PluginHost::new(
            Limits::default(),
            CompileCache::at(&dir),
            Services::default(),
        )
        .unwrap();
        host.load(&package, &Capabilities::default()).unwrap().cache
    };
    assert_eq!(load(), CacheOutcome::Compiled);
    assert_eq!(
        load(),
        CacheOutcome::Hit,
        "the second start reuses the artifact"
    );

    // A damaged artifact is recompiled, never run.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            let mut bytes = std::fs::read(&path).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    assert_eq!(load(), CacheOutcome::Compiled);
    assert_eq!(load(), CacheOutcome::Hit);
}

/// The cached artifacts (`.cwasm`) in `dir`, by file name.
fn artifacts(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

/// One plugin's compiled artifact copied over another's (with whatever sits beside it) is not
/// run under the other's name, and a cache others may write is not used at all.
#[test]
fn the_compile_cache_runs_only_what_it_wrote_for_that_plugin() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("cache");
    let host = || {
        PluginHost::new(
            Limits::default(),
            CompileCache::at(&dir),
            Services::default(),
        )
        .unwrap()
    };
    let tutor = Package::open(&plugin("tutor")).unwrap();
    let roleplay = Package::open(&plugin("roleplay")).unwrap();
    let first = host();
    first.load(&tutor, &Capabilities::default()).unwrap();
    let tutor_files = artifacts(&dir);
    first.load(&roleplay, &Capabilities::default()).unwrap();
    let roleplay_files: Vec<_> = artifacts(&dir).difference(&tutor_files).cloned().collect();
    let (tutor_art, roleplay_art) = (
        tutor_files.iter().next().unwrap().clone(),
        roleplay_files[0].clone(),
    );
    // Swap in roleplay's artifact, and every file beside it, under the tutor's name.
    for ext in ["cwasm", "mac", "sha256"] {
        let from = roleplay_art.with_extension(ext);
        if from.exists() {
            std::fs::copy(&from, tutor_art.with_extension(ext)).unwrap();
        }
    }
    let loaded = host().load(&tutor, &Capabilities::default()).unwrap();
    assert_eq!(
        loaded.cache,
        CacheOutcome::Compiled,
        "the swapped artifact is refused"
    );
    assert_eq!(loaded.digest, penpal::plugins::cache::digest(&tutor.wasm));
    assert_eq!(
        host().load(&tutor, &Capabilities::default()).unwrap().cache,
        CacheOutcome::Hit
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let loaded = host().load(&tutor, &Capabilities::default()).unwrap();
        assert_eq!(
            loaded.cache,
            CacheOutcome::Compiled,
            "a world-writable cache is not read"
        );
    }
}

/// A memory cap below what a plugin needs from its first instruction is said plainly, at once:
/// the cached artifact is not taken for a damaged one and recompiled.
#[test]
fn a_plugin_too_big_for_the_memory_cap_is_refused_without_recompiling() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("cache");
    let tutor = Package::open(&plugin("tutor")).unwrap();
    PluginHost::new(
        Limits::default(),
        CompileCache::at(&dir),
        Services::default(),
    )
    .unwrap()
    .load(&tutor, &Capabilities::default())
    .unwrap();
    let before: Vec<_> = artifacts(&dir)
        .into_iter()
        .map(|p| std::fs::metadata(&p).unwrap().modified().unwrap())
        .collect();
    let tiny = Limits {
        memory_bytes: 64 << 10,
        ..Limits::default()
    };
    let host = PluginHost::new(tiny, CompileCache::at(&dir), Services::default()).unwrap();
    let err = host
        .load(&tutor, &Capabilities::default())
        .err()
        .expect("the cap is too small");
    assert!(
        matches!(err, penpal::plugins::LoadError::Limit { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("PENPAL_PLUGIN_MEMORY_MIB"),
        "{err}"
    );
    let after: Vec<_> = artifacts(&dir)
        .into_iter()
        .map(|p| std::fs::metadata(&p).unwrap().modified().unwrap())
        .collect();
    assert_eq!(
        before, after,
        "the artifact was neither replaced nor rewritten"
    );
}
