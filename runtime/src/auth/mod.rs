//! Accounts and sign-in: argon2id passwords, short-lived JWT access tokens, rotating refresh
//! tokens, login throttling, and the account's own routes (register, login, refresh, logout,
//! change password, delete, export).
//!
//! Access tokens are HS256 JWTs that live minutes; refresh tokens are opaque random strings,
//! stored only as SHA-256 hashes, used once each: every refresh returns a new one in the same
//! *family*, and presenting a used one again means it was stolen, so the whole family is
//! revoked. Logging out revokes the session's family; changing the password revokes every
//! other family. Browsers keep the refresh token in an HttpOnly cookie instead (`web`).

pub mod admin;
pub mod devices;
pub mod handoff;
pub mod passwords;
pub mod recovery;
pub mod routes;
pub mod state;
pub mod throttle;
pub mod tokens;
pub mod web;

use serde::{Deserialize, Serialize};

pub use state::{AuthSettings, AuthState, AuthUser, Gate, Operator};
pub use throttle::Throttle;
pub use tokens::{Claims, Keys, Tokens};

/// What a user may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Practises a language.
    Learner,
    /// Follows a class of learners.
    Teacher,
    /// Runs a school (a tenant).
    SchoolAdmin,
    /// Runs the platform.
    Operator,
}
