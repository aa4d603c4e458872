//! Every integration test in one binary: one link instead of sixteen, which keeps a fresh
//! CI target small (each test binary carries the whole runtime, ~290 MB) and its build fast.
//! Each module is one area; run one with `cargo test -p penpal --test integration -- NAME::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod api_docs;
mod billing;
mod classes;
mod cli;
mod common;
mod hardening;
mod learners;
mod lifecycle;
mod llm_client;
mod lti;
mod manifests;
mod marketplace;
mod notify;
mod observability;
mod protocol;
mod sandbox;
mod schemathesis;
mod schools;
mod scripted_llm;
mod server;
mod sso;
mod tutors;
mod web;
mod worlds;
