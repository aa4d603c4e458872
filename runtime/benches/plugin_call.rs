//! Instantiate + call a tutor's `plan-turn` on a fresh store per call: through penpal's host
//! (registry, breaker, grants, limits, timeout, outcome accounting) and, as the baseline in the
//! same run, through bare wasmtime with the same engine configuration and trivial imports.
//!
//! Run with `cargo xtask bench` (it builds the plugins first). Compare the two medians as a
//! ratio: absolute figures on a shared machine drift from run to run.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use penpal::plugins::{Capabilities, CompileCache, Limits, PluginHost, Services, engine_config};
use penpal::tutoring::tutor::TutorClient;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bare {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2",
        world: "tutor",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use bare::exports::penpal::plugin::tutoring as t;
use bare::penpal::plugin::{config, kv, llm, log, types};

/// Store data of the baseline: WASI and nothing else.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn denied() -> types::PluginError {
    types::PluginError::Denied("baseline".into())
}

impl types::Host for Bare {}
impl log::Host for Bare {
    async fn log(&mut self, _: log::Level, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}
impl config::Host for Bare {
    async fn get(&mut self, _: String) -> wasmtime::Result<Option<String>> {
        Ok(None)
    }
    async fn secret(&mut self, _: String) -> wasmtime::Result<Result<String, types::PluginError>> {
        Ok(Err(denied()))
    }
}
impl kv::Host for Bare {
    async fn get(
        &mut self,
        _: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, types::PluginError>> {
        Ok(Err(denied()))
    }
    async fn set(
        &mut self,
        _: String,
        _: Vec<u8>,
    ) -> wasmtime::Result<Result<(), types::PluginError>> {
        Ok(Err(denied()))
    }
    async fn delete(&mut self, _: String) -> wasmtime::Result<Result<(), types::PluginError>> {
        Ok(Err(denied()))
    }
    async fn list_keys(
        &mut self,
        _: String,
    ) -> wasmtime::Result<Result<Vec<String>, types::PluginError>> {
        Ok(Err(denied()))
    }
}
impl llm::Host for Bare {
    async fn complete(
        &mut self,
        _: types::CompletionRequest,
    ) -> wasmtime::Result<Result<llm::Completion, types::PluginError>> {
        Ok(Err(denied()))
    }
}

fn plugin_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/tutor");
    assert!(
        dir.join("plugin.wasm").is_file(),
        "run `cargo xtask bench` to build the plugins first"
    );
    dir
}

fn history() -> Vec<(bool, &'static str)> {
    vec![
        (true, "Bonjour ! Je m'appelle Ana."),
        (false, "Bonjour Ana ! Enchantée. Tu habites où ?"),
        (true, "J'habite à Lisbonne, mais je vais déménager à Lyon."),
        (false, "Super ! Pourquoi Lyon ?"),
        (true, "Pour mon travail. Je suis cuisinière."),
        (false, "Génial ! Tu cuisines quoi ?"),
    ]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limits = Limits::default();

    // penpal's host.
    let host = std::sync::Arc::new(
        PluginHost::new(limits, CompileCache::disabled(), Services::default()).unwrap(),
    );
    host.install_path(&plugin_dir(), &Capabilities::default())
        .unwrap();
    let tutors = TutorClient::new(host.clone());
    use penpal::plugins::types as pt;
    use penpal::tutoring::tutor as pt_tutor;
    let ctx = pt_tutor::TurnContext {
        profile: pt_tutor::LearnerProfile {
            display_name: "Ana".into(),
            native_language: "pt".into(),
            target_language: "fr".into(),
            level: pt_tutor::CefrLevel::A2,
            goals: vec!["move to Lyon".into()],
            interests: vec!["cooking".into()],
            correction_intensity: pt_tutor::CorrectionIntensity::EveryError,
        },
        mode: pt_tutor::ChatMode::Tutor,
        scenario: None,
        topic: None,
        history: history()
            .into_iter()
            .map(|(user, text)| pt::ChatMessage {
                role: if user {
                    pt::Role::User
                } else {
                    pt::Role::Assistant
                },
                content: text.into(),
            })
            .collect(),
        memory: Some("Ana is a cook from Lisbon.".into()),
        pinned: vec![],
        message: "Je cuisine le poisson et les légumes.".into(),
        turn: 3,
    };

    // Bare wasmtime: the same engine configuration and component, no penpal layers.
    let engine = Engine::new(&engine_config(&limits)).unwrap();
    let wasm = std::fs::read(plugin_dir().join("plugin.wasm")).unwrap();
    let component = Component::new(&engine, &wasm).unwrap();
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    bare::Tutor::add_to_linker::<_, HasSelf<Bare>>(&mut linker, |s| s).unwrap();
    let pre = bare::TutorPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    let bare_ctx = t::TurnContext {
        profile: t::LearnerProfile {
            display_name: ctx.profile.display_name.clone(),
            native_language: ctx.profile.native_language.clone(),
            target_language: ctx.profile.target_language.clone(),
            level: t::CefrLevel::A2,
            goals: ctx.profile.goals.clone(),
            interests: ctx.profile.interests.clone(),
            correction_intensity: t::CorrectionIntensity::EveryError,
        },
        mode: t::ChatMode::Tutor,
        scenario: None,
        topic: None,
        history: history()
            .into_iter()
            .map(|(user, text)| types::ChatMessage {
                role: if user {
                    types::Role::User
                } else {
                    types::Role::Assistant
                },
                content: text.into(),
            })
            .collect(),
        memory: ctx.memory.clone(),
        pinned: vec![],
        message: ctx.message.clone(),
        turn: 3,
    };

    let mut group = c.benchmark_group("plan_turn");
    group.bench_function("bare_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let mut store = Store::new(
                &engine,
                Bare {
                    wasi: WasiCtx::builder().build(),
                    table: ResourceTable::new(),
                },
            );
            // The shared engine configuration interrupts on epochs; never, here.
            store.set_epoch_deadline(u64::MAX);
            let tutor = pre.instantiate_async(&mut store).await.unwrap();
            tutor
                .penpal_plugin_tutoring()
                .call_plan_turn(&mut store, &bare_ctx)
                .await
                .unwrap()
                .unwrap()
        })
    });
    group.bench_function("penpal_host", |b| {
        b.to_async(&rt)
            .iter(|| async { tutors.plan_turn("tutor", &ctx).await.unwrap() })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
