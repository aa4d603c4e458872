//! Language models: the clients penpal talks to, the accounting of what they use, and, for
//! tests and offline development, the scripted OpenAI-compatible server it ships.

pub mod client;
pub mod scripted;
pub mod usage;

pub use client::{Answer, LlmClient, LlmError, LlmSettings, Piece, Usage, estimate_tokens};
