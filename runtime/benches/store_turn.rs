//! What the database costs a turn, against a query that does nothing, in one run on the
//! embedded `mem://` store: the floor under penpal's turns per second.
//!
//! - `baseline/return-1`: one query round trip through the embedded engine, no data;
//! - `one-row/create`: a single-row `CREATE` on a schemafull table, the unit of every write;
//! - `turn/append-learner`: the transaction that starts every turn (the learner's message
//!   stored and counted, the profile read).
//!
//! Run with `cargo xtask bench`. Compare the medians as ratios to the baseline: absolute
//! figures on a shared machine drift from run to run.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use penpal::store::Db;
use penpal::tutoring::conversations::append_learner;
use serde_json::json;

const C: &str = "0123456789abcdef0123456789abcdef";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(async {
        let db = Db::connect("mem://", None).await.unwrap();
        db.exec(
            "CREATE user:u CONTENT { email: 'a@example.com', password_hash: 'x', role: 'learner', created_at: 0,
                password_changed_at: 0, profile: { display_name: 'Ana', targets: [{ language: 'es', level: 'B1' }] } };
             CREATE type::record('conversation', $c) CONTENT { user: 'u', title: 't', personality: 'p', mode: 'tutor',
                language: 'es', archived: false, created_at: 0, updated_at: 0, last_seq: 0, turns: 0, summary_upto: 0, pinned: [] };",
            json!({"c": C}),
        )
        .await
        .unwrap();
        db
    });
    let mut g = c.benchmark_group("store");
    g.bench_function("baseline/return-1", |b| {
        b.to_async(&rt)
            .iter(|| async { db.exec("RETURN 1", json!({})).await.unwrap() })
    });
    let mut n = 0i64;
    g.bench_function("one-row/create", |b| {
        b.to_async(&rt).iter(|| {
            n += 1;
            let db = &db;
            async move {
                db.exec(
                    "CREATE type::record('turn_stat', ['u', $n, 'x']) CONTENT { user: 'u', conversation: $c, language: 'es',
                        at: $n, words: 5, errors: 1, categories: { grammar: 1 }, observed: NONE, confidence: NONE } RETURN NONE",
                    json!({"n": n, "c": C}),
                )
                .await
                .unwrap()
            }
        })
    });
    g.bench_function("turn/append-learner", |b| {
        b.to_async(&rt).iter(|| async {
            append_learner(&db, C, "Ayer fui al mercado con mi hermana.".into(), false)
                .await
                .unwrap()
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
