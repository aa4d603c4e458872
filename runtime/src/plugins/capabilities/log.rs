//! `log`: a plugin's lines in the host's log, tagged with its name and version. Always granted,
//! but bounded: lines are cut at [`MAX_LOG_LINE`], a call writes at most
//! [`MAX_LOG_LINES_PER_CALL`], control characters are escaped (a plugin cannot forge a log line
//! or move the operator's terminal) and its own secrets are redacted.

use std::sync::Arc;

use wasmtime::component::Linker;

use super::{CallState, Capability, Ctx, Identity, Services, View};
use crate::plugins::bindings::{v0_1, v0_2};
use crate::plugins::error::escape_controls;

/// Longest log line kept from a plugin, in bytes.
pub const MAX_LOG_LINE: usize = 4096;
/// Log lines one call may write; the rest are dropped (and counted in one closing line).
pub const MAX_LOG_LINES_PER_CALL: u32 = 64;

/// The `log` capability.
pub(crate) struct Log;

/// Lines written so far in this call.
#[derive(Default)]
pub(crate) struct LogState {
    lines: u32,
}

impl Capability for Log {
    type State = LogState;

    fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
        v0_1::log::add_to_linker::<_, View<Log>>(linker, CallState::view::<Log>)?;
        v0_2::log::add_to_linker::<_, View<Log>>(linker, CallState::view::<Log>)
    }

    fn state(_: &Arc<Identity>, _: &Services) -> LogState {
        LogState::default()
    }
}

impl v0_2::log::Host for Ctx<'_, LogState> {
    async fn log(&mut self, level: v0_2::log::Level, message: String) -> wasmtime::Result<()> {
        use v0_2::log::Level;
        self.state.lines += 1;
        if self.state.lines > MAX_LOG_LINES_PER_CALL {
            if self.state.lines == MAX_LOG_LINES_PER_CALL + 1 {
                tracing::warn!(target: "penpal::plugin", plugin = %self.who.name, "plugin logs too much; dropping the rest of this call's lines");
            }
            return Ok(());
        }
        let mut line = escape_controls(&self.services.redact(&self.who.name, message));
        if line.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push('…');
        }
        let (plugin, version) = (&self.who.name, &self.who.version);
        match level {
            Level::Trace => tracing::trace!(target: "penpal::plugin", plugin, version, "{line}"),
            Level::Debug => tracing::debug!(target: "penpal::plugin", plugin, version, "{line}"),
            Level::Info => tracing::info!(target: "penpal::plugin", plugin, version, "{line}"),
            Level::Warn => tracing::warn!(target: "penpal::plugin", plugin, version, "{line}"),
            Level::Error => tracing::error!(target: "penpal::plugin", plugin, version, "{line}"),
        }
        Ok(())
    }
}

impl v0_1::log::Host for Ctx<'_, LogState> {
    async fn log(&mut self, level: v0_1::log::Level, message: String) -> wasmtime::Result<()> {
        use v0_1::log::Level as Old;
        use v0_2::log::Level;
        let level = match level {
            Old::Trace => Level::Trace,
            Old::Debug => Level::Debug,
            Old::Info => Level::Info,
            Old::Warn => Level::Warn,
            Old::Error => Level::Error,
        };
        v0_2::log::Host::log(self, level, message).await
    }
}
