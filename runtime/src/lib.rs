//! # penpal
//!
//! The Penpal runtime: an actor system that owns users, sessions and conversations, and hosts
//! everything a third party may replace — tutor personalities, payment providers, notifiers,
//! LMS integrations — as sandboxed WebAssembly components.
//!
//! The binary is a thin `main` over [`cli`]; the server is [`server::run`], which takes an
//! already-bound listener so tests can run the real thing on port 0.

pub mod actors;
pub mod api;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod config;
pub mod llm;
pub mod lms;
pub mod notify;
pub mod ops;
pub mod plugins;
pub mod server;
pub mod store;
pub mod tutoring;
pub mod web;
