//! LTI's two hot paths, each against its floor in the same run.
//!
//! Launches — what penpal's launch check costs against the bare signature check:
//!
//! - `baseline/jsonwebtoken`: verifying the same RS256 id token with `jsonwebtoken` directly
//!   (the key already decoded): the floor every LTI tool pays;
//! - `launch/verify-warm-jwks`: [`Lti::verify`] — the `state` spent in the embedded store,
//!   the platform read, its key found in the warm JWKS cache by `kid`, the signature, and every
//!   claim check (`iss`, `aud`/`azp`, `exp`/`iat`, nonce, deployment, version, message type).
//!
//! Each launch needs a `state` of its own (it is single use): they are stored before the timed
//! part, all answering the same signed token's nonce. The platform is the Moodle profile of
//! the simulator on loopback.
//!
//! Grade passback — scores through the durable queue against posting them by hand:
//!
//! - `baseline/post-score`: one AGS score posted straight to the simulator's gradebook with a
//!   token already in hand (the HTTP round trip every grade costs);
//! - `passback/queue-to-gradebook`: a queued grade delivered by [`ScoreSender`] — claimed
//!   with a lease, its body built by the Moodle plugin, the cached token and line item reused,
//!   posted, marked sent.
//!
//! Run with `cargo xtask bench` (it builds the plugins); compare the medians as ratios.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use penpal::auth::tokens::hash_token;
use penpal::lms::lti::jwks::PlatformKeys;
use penpal::lms::lti::keys::ToolKeys;
use penpal::lms::lti::launch::Lti;
use penpal::lms::lti::outbound::Outbound;
use penpal::lms::lti::platforms::{self, NewPlatform};
use penpal::lms::lti::scores::{Route, ScoreSender, queue};
use penpal::lms::lti::services::Tokens;
use penpal::lms::platform::LmsClient;
use penpal::lms::rubric::Grade;
use penpal::lms::simulator::{Course, Message, Platform, Profile};
use penpal::plugins::Capabilities;
use penpal::plugins::{CompileCache, Limits, PluginHost, Services};
use penpal::store::{Batch, Db, now_ms};
use serde_json::{Value, json};

const NONCE: &str = "bench-nonce";

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let (lti, token, key, validation) = rt.block_on(async {
        let db = Db::connect("mem://", None).await.unwrap();
        let sim = Platform::start(Profile::Moodle, "bench-client")
            .await
            .unwrap();
        let platform = registered(&db, &sim).await;
        let outbound = Outbound::new(vec!["127.0.0.0/8".parse().unwrap()]).unwrap();
        let host = plugin_host();
        let lti = Lti {
            db,
            keys: Arc::new(PlatformKeys::new(outbound)),
            lms: LmsClient::new(Arc::new(host)),
            public_url: "https://penpal.test".into(),
        };
        let user = sim.user(2, "Ana", "Lima", false);
        let course = Course {
            id: "course-1".into(),
            title: "Français".into(),
            custom: json!({}),
        };
        let link = Message::ResourceLink {
            id: "link-1".into(),
            assignment: None,
        };
        let mut claims = sim.claims(&user, &course, &link, NONCE);
        // Valid for the whole run.
        claims["exp"] = json!(now_ms() / 1000 + 3600);
        let token = sim.sign(&claims).unwrap();
        // Warm the key cache, as every launch after a platform's first finds it.
        store_states(&lti.db, &platform, 0, 1).await;
        lti.verify(&token, "state-0").await.unwrap();

        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(sim.public_jwks()["keys"][0].clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_issuer(&[sim.issuer()]);
        v.set_audience(&[sim.client_id()]);
        // The simulator lives as long as the run.
        std::mem::forget(sim);
        (lti, token, key, v)
    });
    let platform: String = rt.block_on(async {
        lti.db
            .one::<String>(
                "SELECT VALUE record::id(id) FROM lti_platform LIMIT 1",
                json!({}),
            )
            .await
            .unwrap()
            .unwrap()
    });

    let mut g = c.benchmark_group("lti");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("baseline/jsonwebtoken", |b| {
        b.iter(|| jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap())
    });
    let mut next = 1u64;
    g.bench_function("launch/verify-warm-jwks", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (lti, token, platform) = (&lti, &token, &platform);
            let from = next;
            next += iters;
            async move {
                store_states(&lti.db, platform, from, iters).await;
                let start = Instant::now();
                for i in from..from + iters {
                    lti.verify(token, &format!("state-{i}")).await.unwrap();
                }
                start.elapsed()
            }
        })
    });
    g.finish();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A plugin host with nothing installed.
fn plugin_host() -> PluginHost {
    PluginHost::new(
        Limits::default(),
        CompileCache::disabled(),
        Services::default(),
    )
    .unwrap()
}

/// `sim` registered for a school; the platform's id.
async fn registered(db: &Db, sim: &Platform) -> String {
    platforms::create(
        db,
        "school-1",
        &NewPlatform {
            name: "Moodle".into(),
            plugin: "moodle".into(),
            issuer: sim.issuer(),
            client_id: sim.client_id().into(),
            deployment_ids: vec![sim.deployment_id().into()],
            auth_url: sim.auth_url(),
            token_url: sim.token_url(),
            jwks_url: sim.jwks_url(),
        },
    )
    .await
    .unwrap()
}

/// Stores logins `state-{from}` … for `platform`, each expecting [`NONCE`].
async fn store_states(db: &Db, platform: &str, from: u64, n: u64) {
    let ids: Vec<String> = (from..from + n)
        .map(|i| hash_token(&format!("state-{i}")))
        .collect();
    for chunk in ids.chunks(1000) {
        db.exec(
            "FOR $id IN $ids { CREATE type::record('lti_state', $id) CONTENT { platform: $p, nonce: $nonce,
                 target: 'https://penpal.test/lti/launch', expires_at: $exp } }",
            json!({"ids": chunk, "p": platform, "nonce": NONCE, "exp": now_ms() + 3_600_000}),
        )
        .await
        .unwrap();
    }
}

fn passback(c: &mut Criterion) {
    let rt = runtime();
    let (sender, route, client, token) = rt.block_on(async {
        let db = Db::connect("mem://", None).await.unwrap();
        let sim = Platform::start(Profile::Moodle, "bench-client")
            .await
            .unwrap();
        let platform = registered(&db, &sim).await;
        // The tool's keys, published where the simulator checks client assertions.
        let keys = ToolKeys::new(db.clone(), &[7; 32]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let jwks_url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let published = keys.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let keys = published.clone();
                async move { axum::Json(keys.jwks().await.unwrap()) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        sim.tool_jwks(&jwks_url);

        let host = plugin_host();
        let moodle =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/moodle");
        assert!(
            moodle.join("plugin.wasm").is_file(),
            "run `cargo xtask bench` to build the plugins first"
        );
        host.install_path(&moodle, &Capabilities::default())
            .unwrap();
        let outbound = Outbound::new(vec!["127.0.0.0/8".parse().unwrap()]).unwrap();
        let tokens = Arc::new(Tokens::new(keys, outbound.clone()));
        let sender = ScoreSender {
            db,
            lms: LmsClient::new(Arc::new(host)),
            outbound: outbound.clone(),
            public_url: "https://penpal.test".into(),
            every: Duration::from_secs(3600),
            tokens: tokens.clone(),
            wake: Arc::default(),
        };
        let origin = sim.auth_url().split("/mod/").next().unwrap().to_string();
        let route = Route {
            platform: platform.clone(),
            line_items_url: format!("{origin}/courses/course-1/lineitems"),
            sub: sim.user(2, "Ana", "Lima", false).id,
        };
        // The first grade makes the line item and fetches the token, as a course's first does.
        enqueue(&sender.db, &route, 0, 1).await;
        assert_eq!(sender.pass().await.unwrap(), 1);
        let p = platforms::get(&sender.db, &platform)
            .await
            .unwrap()
            .unwrap();
        let token = tokens
            .get(&p, "https://purl.imsglobal.org/spec/lti-ags/scope/score")
            .await
            .unwrap();
        std::mem::forget(sim);
        (sender, route, outbound.client().clone(), token)
    });
    let scores_url = format!("{}/1/scores", route.line_items_url.trim_end_matches('/'));
    let body = json!({"userId": route.sub, "scoreGiven": 10.0, "scoreMaximum": 16.0,
        "activityProgress": "Completed", "gradingProgress": "FullyGraded",
        "timestamp": "2026-12-04T10:00:00Z"})
    .to_string();

    let mut g = c.benchmark_group("lti");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("baseline/post-score", |b| {
        b.to_async(&rt).iter(|| async {
            let r = client
                .post(&scores_url)
                .bearer_auth(&token)
                .header("content-type", "application/vnd.ims.lis.v1.score+json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
        })
    });
    let mut next = 1u64;
    g.bench_function("passback/queue-to-gradebook", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (sender, route) = (&sender, &route);
            let from = next;
            next += iters;
            async move {
                enqueue(&sender.db, route, from, iters).await;
                let start = Instant::now();
                let mut sent = 0;
                let mut idle = 0;
                while sent < iters as usize {
                    let n = sender.pass().await.unwrap();
                    sent += n;
                    idle = if n == 0 { idle + 1 } else { 0 };
                    if idle > 100 {
                        let why: Option<Value> = sender
                            .db
                            .one("SELECT last_error, attempts FROM lti_score WHERE status = 'pending' LIMIT 1", json!({}))
                            .await
                            .unwrap();
                        panic!("scores stopped arriving after {sent} of {iters}: {why:?}");
                    }
                }
                start.elapsed()
            }
        })
    });
    g.finish();
}

/// Queues grades `from` … (one submission each) along `route`, each in its own transaction as
/// grading does (a batch binds one grade's parameters).
async fn enqueue(db: &Db, route: &Route, from: u64, n: u64) {
    for i in from..from + n {
        let mut batch = Batch::default();
        let grade = Grade::new(Vec::new(), None, "penpal".into(), now_ms());
        queue(
            &mut batch,
            route,
            &format!("sub-{i}"),
            "assignment-1",
            "Au restaurant",
            &grade,
        );
        batch.commit(db).await.unwrap();
    }
}

criterion_group!(benches, bench, passback);
criterion_main!(benches);
