//! The host side of the `penpal:plugin` WIT contract: one module per WIT version, each
//! generated once (the shared imports once, each world reusing them), so a new version sits
//! beside the old ones and components built against either keep running.
//!
//! What the rest of the host needs to know of a component is its [`WorldId`] (which world, at
//! which version) — read from its exports by [`super::check`] — and, to call it, the typed
//! bindings of that world: each implements [`World`], and [`super::PluginHost::call`] runs any of
//! them through one path. Conversions between versions of the shared types live here; a room
//! converts its own world's types (a 0.1 tutor's context is the tutoring room's business).

/// Generates one WIT version: the shared imports once in `host`, re-exported, and each listed
/// world reusing them.
macro_rules! wit_version {
    ($path:literal, $($module:ident => $world:literal),+ $(,)?) => {
        /// The imports every world shares: `types`, `log`, `config`, `kv`, `llm`.
        pub mod host {
            wasmtime::component::bindgen!({
                path: $path,
                world: "host",
                imports: { default: async | trappable },
            });
        }

        pub use host::penpal::plugin::{config, kv, llm, log, types};

        $(
            pub mod $module {
                wasmtime::component::bindgen!({
                    path: $path,
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
        )+
    };
}

pub mod v0_1;
pub mod v0_2;

use std::any::Any;
use std::fmt;
use std::future::Future;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::capabilities::CallState;
use super::error::PluginError;
use super::manifest::Kind;

/// A `penpal:plugin` version this host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum WitVersion {
    /// `penpal:plugin@0.1.x`.
    #[serde(rename = "0.1")]
    V0_1,
    /// `penpal:plugin@0.2.x`.
    #[serde(rename = "0.2")]
    V0_2,
}

impl WitVersion {
    /// The version the SDK targets.
    pub const CURRENT: WitVersion = WitVersion::V0_2;

    /// Every version this host runs, oldest first.
    pub const ALL: [WitVersion; 2] = [WitVersion::V0_1, WitVersion::V0_2];

    /// The newest release of this version's line that the host provides.
    pub fn provided(self) -> semver::Version {
        match self {
            WitVersion::V0_1 => semver::Version::new(0, 1, 0),
            WitVersion::V0_2 => semver::Version::new(0, 2, 0),
        }
    }

    /// The line `version` belongs to, if this host runs it: the same minor before 1.0, and no
    /// newer than the release the host provides (a component may not use what is not there).
    pub fn of(version: &semver::Version) -> Option<WitVersion> {
        WitVersion::ALL.into_iter().find(|line| {
            let host = line.provided();
            version.major == host.major && version.minor == host.minor && version <= &host
        })
    }
}

impl fmt::Display for WitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WitVersion::V0_1 => "0.1",
            WitVersion::V0_2 => "0.2",
        })
    }
}

/// Which world a component exports, at which version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct WorldId {
    /// The plugin kind the world serves.
    pub kind: Kind,
    /// The WIT version.
    pub wit: WitVersion,
}

impl fmt::Display for WorldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.kind, self.wit)
    }
}

/// The typed bindings of one world at one version: how to prepare them once at load and
/// instantiate them per call.
pub trait World: Sized + Send + 'static {
    /// Which world this is.
    const ID: WorldId;
    /// The pre-instance with the export indices resolved, made once per installed plugin.
    type Pre: Send + Sync + 'static;

    /// Resolves the world's exports in `pre`; fails when the component does not export them.
    fn prepare(pre: InstancePre<CallState>) -> wasmtime::Result<Self::Pre>;

    /// A fresh instance in `store`.
    fn instantiate(
        pre: &Self::Pre,
        store: &mut Store<CallState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send;
}

macro_rules! worlds {
    ($($version:ident :: $module:ident :: { $world:ident, $pre:ident } => $kind:ident @ $wit:ident;)*) => {
        $(
            impl World for $version::$module::$world {
                const ID: WorldId = WorldId { kind: Kind::$kind, wit: WitVersion::$wit };
                type Pre = $version::$module::$pre<CallState>;

                fn prepare(pre: InstancePre<CallState>) -> wasmtime::Result<Self::Pre> {
                    $version::$module::$pre::new(pre)
                }

                async fn instantiate(
                    pre: &Self::Pre,
                    store: &mut Store<CallState>,
                ) -> wasmtime::Result<Self> {
                    pre.instantiate_async(store).await
                }
            }
        )*

        /// Whether this host runs world `id`.
        pub fn hosted(id: WorldId) -> bool {
            [$(<$version::$module::$world as World>::ID),*].contains(&id)
        }

        /// Prepares `pre` as the typed world `id`, type-erased for the installed-plugin table.
        pub(crate) fn prepare(
            id: WorldId,
            pre: InstancePre<CallState>,
        ) -> wasmtime::Result<Box<dyn Any + Send + Sync>> {
            $(
                if id == <$version::$module::$world as World>::ID {
                    return Ok(Box::new(<$version::$module::$world as World>::prepare(pre)?));
                }
            )*
            Err(wasmtime::format_err!("this host has no bindings for the {id} world"))
        }
    };
}

worlds! {
    v0_1::tutor::{ Tutor, TutorPre } => Tutor @ V0_1;
    v0_2::tutor::{ Tutor, TutorPre } => Tutor @ V0_2;
    v0_2::payment_provider::{ PaymentProvider, PaymentProviderPre } => PaymentProvider @ V0_2;
    v0_2::notifier::{ Notifier, NotifierPre } => Notifier @ V0_2;
    v0_2::lms::{ Lms, LmsPre } => Lms @ V0_2;
}

/// Conversions of the shared types between each version and the host's own terms. The shapes
/// are the same in 0.1 and 0.2; only the generated Rust types differ.
macro_rules! shared_conversions {
    ($($version:ident),*) => {$(
        impl From<$version::types::PluginError> for PluginError {
            fn from(e: $version::types::PluginError) -> Self {
                use $version::types::PluginError as W;
                match e {
                    W::Denied(m) => PluginError::Denied(m),
                    W::InvalidInput(m) => PluginError::InvalidInput(m),
                    W::NotFound(m) => PluginError::NotFound(m),
                    W::Unavailable(m) => PluginError::Unavailable(m),
                    W::Internal(m) => PluginError::Internal(m),
                }
            }
        }

        impl From<PluginError> for $version::types::PluginError {
            fn from(e: PluginError) -> Self {
                use $version::types::PluginError as W;
                match e {
                    PluginError::Denied(m) => W::Denied(m),
                    PluginError::InvalidInput(m) => W::InvalidInput(m),
                    PluginError::NotFound(m) => W::NotFound(m),
                    PluginError::Unavailable(m) => W::Unavailable(m),
                    PluginError::Internal(m) => W::Internal(m),
                }
            }
        }
    )*};
}

shared_conversions!(v0_1, v0_2);

impl From<v0_1::types::Role> for v0_2::types::Role {
    fn from(r: v0_1::types::Role) -> Self {
        match r {
            v0_1::types::Role::System => Self::System,
            v0_1::types::Role::User => Self::User,
            v0_1::types::Role::Assistant => Self::Assistant,
        }
    }
}

impl From<v0_2::types::Role> for v0_1::types::Role {
    fn from(r: v0_2::types::Role) -> Self {
        match r {
            v0_2::types::Role::System => Self::System,
            v0_2::types::Role::User => Self::User,
            v0_2::types::Role::Assistant => Self::Assistant,
        }
    }
}

impl From<v0_1::types::ChatMessage> for v0_2::types::ChatMessage {
    fn from(m: v0_1::types::ChatMessage) -> Self {
        Self {
            role: m.role.into(),
            content: m.content,
        }
    }
}

impl From<v0_2::types::ChatMessage> for v0_1::types::ChatMessage {
    fn from(m: v0_2::types::ChatMessage) -> Self {
        Self {
            role: m.role.into(),
            content: m.content,
        }
    }
}

impl From<v0_1::types::CompletionRequest> for v0_2::types::CompletionRequest {
    fn from(r: v0_1::types::CompletionRequest) -> Self {
        Self {
            messages: r.messages.into_iter().map(Into::into).collect(),
            model: r.model,
            temperature: r.temperature,
            max_tokens: r.max_tokens,
            json: r.json,
        }
    }
}

impl From<v0_2::types::CompletionRequest> for v0_1::types::CompletionRequest {
    fn from(r: v0_2::types::CompletionRequest) -> Self {
        Self {
            messages: r.messages.into_iter().map(Into::into).collect(),
            model: r.model,
            temperature: r.temperature,
            max_tokens: r.max_tokens,
            json: r.json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_belongs_to_its_line_and_not_past_what_the_host_provides() {
        let v = |s: &str| semver::Version::parse(s).unwrap();
        assert_eq!(WitVersion::of(&v("0.1.0")), Some(WitVersion::V0_1));
        assert_eq!(WitVersion::of(&v("0.2.0")), Some(WitVersion::V0_2));
        assert_eq!(
            WitVersion::of(&v("0.2.1")),
            None,
            "newer than the host provides"
        );
        assert_eq!(WitVersion::of(&v("0.3.0")), None);
        assert_eq!(WitVersion::of(&v("1.1.0")), None);
    }
}
