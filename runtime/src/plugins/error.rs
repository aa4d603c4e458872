//! What can go wrong loading or calling a plugin, as the rest of the host matches on it.

use std::time::Duration;

use super::bindings::WorldId;
use super::manifest::Kind;

/// What a plugin (or a host capability, to a plugin) answers when it cannot do what was asked:
/// the `plugin-error` of every WIT version, in the host's own terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// Not granted, or a signature or credential did not verify.
    #[error("denied: {0}")]
    Denied(String),
    /// The input was malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The named thing does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A dependency failed; the same call may succeed later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected state.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The package could not be read or its manifest is invalid.
    #[error(transparent)]
    Package(#[from] super::package::PackageError),
    /// The file is not a valid WebAssembly component for this host.
    #[error("not a valid component: {0}")]
    Compile(String),
    /// The component needs more than this host's limits allow.
    #[error(
        "the plugin needs more than this server's limits allow (memory cap {memory_mib} MiB; raise PENPAL_PLUGIN_MEMORY_MIB): {why}"
    )]
    Limit {
        /// What the engine said.
        why: String,
        /// The memory cap in force.
        memory_mib: usize,
    },
    /// The component does not implement what its manifest says.
    #[error("{0}")]
    Contract(String),
}

/// Why a plugin call failed. Every variant fails that one call only.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No plugin of that name is installed.
    #[error("no plugin named `{0}` is installed")]
    NotInstalled(String),
    /// The plugin keeps failing; its breaker is open.
    #[error("plugin `{plugin}` is failing and paused; retry in {}s", retry_in.as_secs().max(1))]
    CircuitOpen {
        /// The plugin.
        plugin: String,
        /// When a call may be tried again.
        retry_in: Duration,
    },
    /// The call spent its CPU budget.
    #[error("plugin `{plugin}` used more than its CPU budget of {budget:?}")]
    CpuExceeded {
        /// The plugin.
        plugin: String,
        /// The budget.
        budget: Duration,
    },
    /// The call ran past its wall-clock timeout.
    #[error("plugin `{plugin}` did not answer within {timeout:?}")]
    Timeout {
        /// The plugin.
        plugin: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The call asked for more memory than its cap.
    #[error("plugin `{plugin}` ran out of memory (cap {cap_mib} MiB)")]
    OutOfMemory {
        /// The plugin.
        plugin: String,
        /// The cap.
        cap_mib: usize,
    },
    /// The result was over the output limit.
    #[error("plugin `{plugin}` returned {size} bytes, over the limit of {limit}")]
    OutputTooLarge {
        /// The plugin.
        plugin: String,
        /// What it returned.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The guest trapped: a panic, an `unreachable`, a bad memory access.
    #[error("plugin `{plugin}` crashed: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// What it said (its panic message, when it printed one), or the trap.
        message: String,
    },
    /// An instance could not be created.
    #[error("plugin `{plugin}` could not start: {message}")]
    Instantiate {
        /// The plugin.
        plugin: String,
        /// Why.
        message: String,
    },
    /// The plugin exports another world than the caller needs (a notifier asked to tutor).
    #[error("plugin `{plugin}` is a {is} plugin, not a {wanted} plugin")]
    WrongWorld {
        /// The plugin.
        plugin: String,
        /// The world it exports.
        is: WorldId,
        /// The world the caller needs.
        wanted: Kind,
    },
    /// The plugin answered with its own error.
    #[error("plugin `{plugin}` answered: {error}")]
    Plugin {
        /// The plugin.
        plugin: String,
        /// Its error.
        error: PluginError,
    },
}

/// `text` from a plugin made safe to put in a log line or an error message: control characters
/// (newlines, carriage returns, terminal escapes…) are written as escapes, so a plugin can
/// neither start a line of its own in the server's log nor colour or move the operator's
/// terminal.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What a crashed guest said, in words its author can act on. A componentize-js guest that
/// throws something other than a `plugin-error` (a plain `new Error(…)`) dies lowering it, with
/// "invalid variant tag value `undefined` (received `Error: …`)": say what it threw and how
/// to return an error instead.
pub fn explain_crash(said: &str) -> String {
    const TAG: &str = "invalid variant tag value `undefined` (received `";
    if let Some(rest) = said.split(TAG).nth(1)
        && let Some((thrown, _)) = rest.split_once("`)")
    {
        return format!(
            "it threw `{thrown}`, which is not a plugin-error: throw \
             {{ tag: \"invalid-input\", val: \"what is wrong\" }} (or another plugin-error \
             tag), or wrap the export in the SDK's `tutor()`, which turns any throw into an \
             `internal` error"
        );
    }
    said.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_javascript_throw_of_a_plain_error_is_explained() {
        let said = "invalid variant tag value `undefined` (received `Error: boom`) specified \
                    for `PluginError`\\nStack:\\n  export_tutoring_0_2_0$planTurn@init.js:1440:17";
        let told = explain_crash(said);
        assert!(
            told.starts_with("it threw `Error: boom`, which is not a plugin-error"),
            "{told}"
        );
        assert!(told.contains("tag: \"invalid-input\""), "{told}");
        assert_eq!(
            explain_crash("panicked at src/lib.rs:3"),
            "panicked at src/lib.rs:3"
        );
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("Ça va ? 👍"), "Ça va ? 👍");
        assert_eq!(
            escape_controls("ok\n2026-12-01T00:00:00Z  INFO penpal::server: forged\r"),
            "ok\\n2026-12-01T00:00:00Z  INFO penpal::server: forged\\r"
        );
        assert_eq!(
            escape_controls("\u{1b}[31mred\u{7}"),
            "\\u{1b}[31mred\\u{7}"
        );
    }
}
