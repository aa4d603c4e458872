//! The HTTP vocabulary every room's handlers share, below the domain rooms: the error type and
//! its JSON body, extractors whose rejections are those errors, who the client is (behind
//! trusted proxies), and per-key rate windows. Nothing here knows a room's state: an extractor
//! that needs configuration asks for it through axum's `FromRef`, so each room keeps a state of
//! its own.

mod client;
mod error;
mod extract;
pub mod limit;

pub use client::{ClientIp, ClientKey, TrustedProxies, client_addr};
pub use error::{ApiError, ApiResult, redact_secrets, report};
pub use extract::{Json, Path, Query, bearer, present, present_whole, whole};
