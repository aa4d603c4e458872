//! `penpal:plugin@0.2`: the shared imports generated once in [`host`], and each world reusing
//! them.

#![allow(missing_docs)]

/// The imports every world shares: `types`, `log`, `config`, `kv`, `llm`.
pub mod host {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2",
        world: "host",
        imports: { default: async | trappable },
    });
}

pub use host::penpal::plugin::{config, kv, llm, log, types};

macro_rules! world {
    ($module:ident, $world:literal) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                path: "../wit/v0.2",
                world: $world,
                imports: { default: async | trappable },
                exports: { default: async },
                with: {
                    "penpal:plugin/types": super::host::penpal::plugin::types,
                    "penpal:plugin/log": super::host::penpal::plugin::log,
                    "penpal:plugin/config": super::host::penpal::plugin::config,
                    "penpal:plugin/kv": super::host::penpal::plugin::kv,
                    "penpal:plugin/llm": super::host::penpal::plugin::llm,
                },
            });
        }
    };
}

world!(tutor, "tutor");
world!(payment_provider, "payment-provider");
world!(notifier, "notifier");
world!(lms, "lms");
