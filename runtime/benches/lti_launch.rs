//! What penpal's LTI launch check costs against the bare signature check, in one run:
//!
//! - `baseline/jsonwebtoken`: verifying the same RS256 id token with `jsonwebtoken` directly
//!   (the key already decoded): the floor every LTI tool pays;
//! - `launch/verify-warm-jwks`: [`Lti::verify`] — the `state` spent in the embedded store,
//!   the platform read, its key found in the warm JWKS cache by `kid`, the signature, and every
//!   claim check (`iss`, `aud`/`azp`, `exp`/`iat`, nonce, deployment, version, message type).
//!
//! Each launch needs a `state` of its own (it is single use): they are stored before the timed
//! part, all answering the same signed token's nonce. The platform is the Moodle profile of
//! the simulator on loopback. Run with `cargo xtask bench`; compare the medians as a ratio.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use penpal::auth::tokens::hash_token;
use penpal::lms::lti::jwks::PlatformKeys;
use penpal::lms::lti::launch::Lti;
use penpal::lms::lti::outbound::Outbound;
use penpal::lms::lti::platforms::{self, NewPlatform};
use penpal::lms::platform::LmsClient;
use penpal::lms::simulator::{Course, Message, Platform, Profile};
use penpal::plugins::{CompileCache, Limits, PluginHost, Services};
use penpal::store::{Db, now_ms};
use serde_json::{Value, json};

const NONCE: &str = "bench-nonce";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (lti, token, key, validation) = rt.block_on(async {
        let db = Db::connect("mem://", None).await.unwrap();
        let sim = Platform::start(Profile::Moodle, "bench-client")
            .await
            .unwrap();
        let platform = platforms::create(
            &db,
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
        .unwrap();
        let outbound = Outbound::new(vec!["127.0.0.0/8".parse().unwrap()]).unwrap();
        let host = PluginHost::new(
            Limits::default(),
            CompileCache::disabled(),
            Services::default(),
        )
        .unwrap();
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

criterion_group!(benches, bench);
criterion_main!(benches);
