//! # penpal-host-api: write a Penpal plugin in Rust
//!
//! This crate is the only dependency a plugin author needs. It owns the guest side of the
//! `penpal:plugin` WIT contract: the generated bindings stay hidden in [`__bindings`], and what
//! an author touches is re-exported here under plain names — the shared [`types`], the host
//! capabilities ([`log`], [`config`], [`kv`], [`llm`]), one module per plugin kind with the trait
//! to implement ([`tutor::Tutor`]…) and one export macro per kind ([`export_tutor!`]…).
//!
//! A whole tutor personality, built with `cargo build --target wasm32-wasip2`:
//!
//! ```no_run
//! use penpal_host_api::tutor::{Scenario, Tutor, TurnContext, TurnPlan, TurnReview};
//! use penpal_host_api::types::{ChatMessage, CompletionRequest, PluginError, Role};
//! use penpal_host_api::analysis::Analysis;
//!
//! struct Echo;
//!
//! impl Tutor for Echo {
//!     fn scenarios() -> Vec<Scenario> {
//!         Vec::new()
//!     }
//!
//!     fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
//!         let system = format!("Answer in {} at level {:?}.", ctx.profile.target_language, ctx.profile.level);
//!         let mut messages = vec![ChatMessage { role: Role::System, content: system }];
//!         messages.extend(ctx.history);
//!         messages.push(ChatMessage { role: Role::User, content: ctx.message });
//!         Ok(TurnPlan {
//!             reply: CompletionRequest { messages, model: None, temperature: Some(0.7), max_tokens: Some(300), json: false },
//!             analysis: None,
//!         })
//!     }
//!
//!     fn review_turn(ctx: TurnContext, _reply: String, analysis: Option<String>) -> Result<TurnReview, PluginError> {
//!         Ok(Analysis::salvage(analysis.as_deref(), &ctx).into_review())
//!     }
//! }
//!
//! penpal_host_api::export_tutor!(Echo);
//! ```
//!
//! with a `penpal-plugin.toml` beside `Cargo.toml` (see the runtime's manifest reference).

extern crate self as penpal_host_api;

pub mod analysis;
pub mod http;
pub mod lang;
pub mod lti;
pub mod prompt;
pub mod signature;

/// The generated bindings. Not a stable API: use the re-exports instead.
#[doc(hidden)]
#[allow(missing_docs, clippy::all, unsafe_code)]
pub mod __bindings {
    /// Imports shared by every world, generated once.
    pub mod host {
        wit_bindgen::generate!({
            path: "../wit/v0.2",
            world: "host",
            runtime_path: "::penpal_host_api::__private::wit_bindgen::rt",
            generate_unused_types: true,
        });
    }

    macro_rules! world_bindings {
        ($module:ident, $world:literal) => {
            pub mod $module {
                wit_bindgen::generate!({
                    path: "../wit/v0.2",
                    world: $world,
                    runtime_path: "::penpal_host_api::__private::wit_bindgen::rt",
                    pub_export_macro: true,
                    with: {
                        "penpal:plugin/types@0.2.0": crate::__bindings::host::penpal::plugin::types,
                        "penpal:plugin/log@0.2.0": crate::__bindings::host::penpal::plugin::log,
                        "penpal:plugin/config@0.2.0": crate::__bindings::host::penpal::plugin::config,
                        "penpal:plugin/kv@0.2.0": crate::__bindings::host::penpal::plugin::kv,
                        "penpal:plugin/llm@0.2.0": crate::__bindings::host::penpal::plugin::llm,
                    },
                });
            }
        };
    }
    world_bindings!(tutor, "tutor");
    world_bindings!(payment_provider, "payment-provider");
    world_bindings!(notifier, "notifier");
    world_bindings!(lms, "lms");
}

/// What the export macros need from this crate, reachable from a plugin that depends on it alone.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

/// Types shared by every plugin kind: chat messages and model requests (every kind may ask the
/// host's model), and the error every call may answer.
pub mod types {
    pub use crate::__bindings::host::penpal::plugin::types::*;

    impl ChatMessage {
        /// An instruction to the model.
        pub fn system(content: impl Into<String>) -> Self {
            ChatMessage {
                role: Role::System,
                content: content.into(),
            }
        }
        /// Something the learner said.
        pub fn user(content: impl Into<String>) -> Self {
            ChatMessage {
                role: Role::User,
                content: content.into(),
            }
        }
        /// Something the tutor said.
        pub fn assistant(content: impl Into<String>) -> Self {
            ChatMessage {
                role: Role::Assistant,
                content: content.into(),
            }
        }
    }

    impl PluginError {
        /// The error's text, whatever its kind.
        pub fn message(&self) -> &str {
            match self {
                PluginError::Denied(m)
                | PluginError::InvalidInput(m)
                | PluginError::NotFound(m)
                | PluginError::Unavailable(m)
                | PluginError::Internal(m) => m,
            }
        }
    }
}

/// Writing to the host's log, tagged with this plugin's name. Always granted.
pub mod log {
    use crate::__bindings::host::penpal::plugin::log as raw;
    pub use raw::Level;

    /// Writes one line at `level`.
    pub fn write(level: Level, message: &str) {
        raw::log(level, message);
    }
    /// Writes a debug line.
    pub fn debug(message: &str) {
        raw::log(Level::Debug, message);
    }
    /// Writes an info line.
    pub fn info(message: &str) {
        raw::log(Level::Info, message);
    }
    /// Writes a warning.
    pub fn warn(message: &str) {
        raw::log(Level::Warn, message);
    }
    /// Writes an error line.
    pub fn error(message: &str) {
        raw::log(Level::Error, message);
    }
}

/// Operator settings (always readable) and secrets (only those requested and granted).
pub mod config {
    use crate::__bindings::host::penpal::plugin::config as raw;
    use crate::types::PluginError;

    /// The operator's setting `key`, or `None`.
    pub fn get(key: &str) -> Option<String> {
        raw::get(key)
    }

    /// The secret `name`: `Denied` unless requested and granted, `NotFound` when unset.
    pub fn secret(name: &str) -> Result<String, PluginError> {
        raw::secret(name)
    }
}

/// This plugin's private key-value store (requires `capabilities.kv = true`).
pub mod kv {
    use crate::__bindings::host::penpal::plugin::kv as raw;
    use crate::types::PluginError;

    /// The bytes at `key`.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, PluginError> {
        raw::get(key)
    }
    /// Stores bytes at `key`.
    pub fn set(key: &str, value: &[u8]) -> Result<(), PluginError> {
        raw::set(key, value)
    }
    /// Removes `key`.
    pub fn delete(key: &str) -> Result<(), PluginError> {
        raw::delete(key)
    }
    /// Keys starting with `prefix`, sorted.
    pub fn list_keys(prefix: &str) -> Result<Vec<String>, PluginError> {
        raw::list_keys(prefix)
    }
    /// The JSON value at `key`; a value that does not parse as `T` is `InvalidInput`.
    pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, PluginError> {
        match raw::get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| PluginError::InvalidInput(format!("kv key {key}: {e}"))),
        }
    }
    /// Stores `value` as JSON at `key`.
    pub fn set_json<T: serde::Serialize>(key: &str, value: &T) -> Result<(), PluginError> {
        let bytes = serde_json::to_vec(value).map_err(|e| PluginError::Internal(e.to_string()))?;
        raw::set(key, &bytes)
    }
}

/// Completions from the host's model (requires `capabilities.llm = true`); metered.
pub mod llm {
    use crate::__bindings::host::penpal::plugin::llm as raw;
    pub use raw::{Completion, Usage};

    /// Runs one completion to its end.
    pub fn complete(
        request: &crate::types::CompletionRequest,
    ) -> Result<Completion, crate::types::PluginError> {
        raw::complete(request)
    }
}

/// Tutor personalities: implement [`tutor::Tutor`], then call [`export_tutor!`]. The learner's
/// profile, levels, modes, corrections and vocabulary are tutor-only types and live here.
pub mod tutor {
    pub use crate::__bindings::tutor::exports::penpal::plugin::tutoring::{
        CefrLevel, ChatMode, Correction, CorrectionIntensity, ErrorCategory, Guest as Tutor,
        LearnerProfile, LevelSignal, Scenario, TurnContext, TurnPlan, TurnReview, VocabularyItem,
    };

    impl CefrLevel {
        /// Every level, lowest first.
        pub const ALL: [CefrLevel; 6] = [
            CefrLevel::A1,
            CefrLevel::A2,
            CefrLevel::B1,
            CefrLevel::B2,
            CefrLevel::C1,
            CefrLevel::C2,
        ];

        /// The level's usual name, such as `B2`.
        pub fn code(self) -> &'static str {
            match self {
                CefrLevel::A1 => "A1",
                CefrLevel::A2 => "A2",
                CefrLevel::B1 => "B1",
                CefrLevel::B2 => "B2",
                CefrLevel::C1 => "C1",
                CefrLevel::C2 => "C2",
            }
        }

        /// Reads `a1`…`c2` in either case.
        pub fn parse(text: &str) -> Option<CefrLevel> {
            CefrLevel::ALL
                .into_iter()
                .find(|level| level.code().eq_ignore_ascii_case(text.trim()))
        }

        /// A1 and A2.
        pub fn is_beginner(self) -> bool {
            matches!(self, CefrLevel::A1 | CefrLevel::A2)
        }

        /// C1 and C2.
        pub fn is_advanced(self) -> bool {
            matches!(self, CefrLevel::C1 | CefrLevel::C2)
        }
    }

    impl ErrorCategory {
        /// Reads a category name as a model tends to write it (`word order`, `Word-Order`…).
        pub fn parse(text: &str) -> Option<ErrorCategory> {
            let norm: String = text
                .trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase())
                .collect();
            Some(match norm.as_str() {
                "grammar" | "conjugation" | "agreement" | "tense" | "gender" => {
                    ErrorCategory::Grammar
                }
                "vocabulary" | "wordchoice" | "lexical" => ErrorCategory::Vocabulary,
                "spelling" | "orthography" | "accent" | "accents" => ErrorCategory::Spelling,
                "punctuation" => ErrorCategory::Punctuation,
                "wordorder" | "syntax" => ErrorCategory::WordOrder,
                "register" | "style" | "formality" => ErrorCategory::Register,
                "other" => ErrorCategory::Other,
                _ => return None,
            })
        }
    }

    impl TurnReview {
        /// A review with nothing in it: no corrections, vocabulary, level or debrief.
        pub fn empty() -> Self {
            TurnReview {
                corrections: Vec::new(),
                vocabulary: Vec::new(),
                level: None,
                debrief: None,
                dropped: Vec::new(),
            }
        }
    }
}

/// Payment providers: implement [`payments::PaymentProvider`], then call [`export_payment_provider!`].
pub mod payments {
    pub use crate::__bindings::payment_provider::exports::penpal::plugin::payments::{
        CheckoutRequest, EventKind, Guest as PaymentProvider, Interval, Money, PaymentEvent,
        Redirect, Subscription, SubscriptionStatus, Webhook,
    };
}

/// Notifiers: implement [`notifications::Notifier`], then call [`export_notifier!`].
pub mod notifications {
    pub use crate::__bindings::notifier::exports::penpal::plugin::notifications::{
        Category, Delivery, Guest as Notifier, Notification,
    };
}

/// LMS integrations: implement [`lms::Lms`], then call [`export_lms!`].
pub mod lms {
    pub use crate::__bindings::lms::exports::penpal::plugin::lms_integration::{
        AssignmentLink, CourseRole, Grade, GradeService, GradingProgress, Guest as Lms, Launch,
        Member, PlatformInfo,
    };
}

/// Exports a type implementing [`tutor::Tutor`] as this component's tutor personality.
#[macro_export]
macro_rules! export_tutor {
    ($ty:ident) => {
        $crate::__export_tutor_impl!($ty with_types_in $crate::__bindings::tutor);
    };
}

/// Exports a type implementing [`payments::PaymentProvider`] as this component's provider.
#[macro_export]
macro_rules! export_payment_provider {
    ($ty:ident) => {
        $crate::__export_payment_provider_impl!($ty with_types_in $crate::__bindings::payment_provider);
    };
}

/// Exports a type implementing [`notifications::Notifier`] as this component's notifier.
#[macro_export]
macro_rules! export_notifier {
    ($ty:ident) => {
        $crate::__export_notifier_impl!($ty with_types_in $crate::__bindings::notifier);
    };
}

/// Exports a type implementing [`lms::Lms`] as this component's LMS integration.
#[macro_export]
macro_rules! export_lms {
    ($ty:ident) => {
        $crate::__export_lms_impl!($ty with_types_in $crate::__bindings::lms);
    };
}
