//! # penpal
//!
//! The Penpal runtime: an actor system that owns users, sessions and conversations, and hosts
//! everything a third party may replace — tutor personalities, payment providers, notifiers,
//! LMS integrations — as sandboxed WebAssembly components.
//!
//! The binary is a thin `main` over [`cli`]; the server is [`server::run`], which takes an
//! already-bound listener so tests can run the real thing on port 0.
//!
//! # Layout
//!
//! Rooms, lowest first; a room uses only rooms above it in this list (`cargo xtask rooms`
//! checks it, and lists the few edges still being removed):
//!
//! | room | owns |
//! |---|---|
//! | [`store`] | the SurrealDB connection, migrations, ids and times, the personal-data registry, the outbox's write side |
//! | [`plugins`] | the wasmtime engine, WIT bindings per version, the one call path, capabilities, manifests, the compile cache; no domain |
//! | [`llm`] | the OpenAI-compatible client, usage and cost accounting, the scripted test model |
//! | [`config`] | the typed command line and environment |
//! | [`http`] | the HTTP vocabulary: the error type, extractors, the client's address, rate windows |
//! | [`auth`] | accounts, passwords, tokens, sessions, throttles, roles, email verification and password reset, the `AuthUser` extractor |
//! | [`tutoring`] | profiles, conversations, the catalogue, the turn pipeline (on [`tutoring::state::TurnDeps`]), memory, progress, the demo, the live protocol, the tutor client |
//! | [`notify`] | the outbox's delivery, the SMTP channel, mail templates and translations, the notifier client |
//! | [`billing`], [`lms`] | their worlds' clients (payment providers, LMS plugins); their rooms grow around them |
//! | [`marketplace`] | signed packages (so far: what a signature covers, publisher keys) |
//! | [`actors`] | the `Conversation`, `Session` and `PluginSupervisor` actors, and the live socket they serve |
//! | [`ops`] | health, readiness, version, metrics and traces |
//! | [`web`] | the web app's pages and assets |
//! | [`api`] | the router composed of each room's routes and state, the OpenAPI and AsyncAPI documents, the cross-cutting layers, the connection loop |
//! | [`server`], [`cli`] | the composition root |
//!
//! No state is shared across rooms: each room's handlers take their own (`AuthState`,
//! `TutoringState`, `LiveState`, `OpsState`), built by [`server`]; an extractor that needs
//! configuration ([`auth::AuthUser`], [`http::ClientIp`]) asks the room's state for it through
//! axum's `FromRef`. A new room (billing, notify, lms) adds its state, its router and its
//! [`store::personal::PersonalData`] part without editing another room.
//!
//! # A chat turn
//!
//! 1. A learner sends `{"type": "message", "text": …}` on `WS /v1/conversations/{id}/live`
//!    ([`actors::live`]); the frame is read once into a [`tutoring::protocol::ClientFrame`]
//!    by the socket's [`actors::session::Session`].
//! 2. The session forwards it to the conversation's [`actors::conversation::Conversation`], the
//!    only writer of its messages, which stores the message (`pending`) before anything can
//!    fail and broadcasts `message.accepted`.
//! 3. [`tutoring::turn::run`] builds the turn context (profile, mode, window, memory) and asks the
//!    tutor plugin for its plan through [`tutoring::tutor::TutorClient`], which runs
//!    `plan-turn` through [`plugins::PluginHost::call`] (a 0.1 tutor's context converted down).
//! 4. [`llm`] runs the plan's reply (streamed: `turn.delta` events) and analysis concurrently.
//! 5. The tutor's `review-turn` turns the analysis into corrections, vocabulary and a level
//!    signal; the turn is stored in one transaction with its usage rows, and `turn.complete`
//!    (or `turn.error`, the message kept for a retry) ends it. The same events reach SSE and
//!    whole-reply clients.

pub mod actors;
pub mod api;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod config;
pub mod http;
pub mod llm;
pub mod lms;
pub mod marketplace;
pub mod notify;
pub mod ops;
pub mod plugins;
pub mod server;
pub mod store;
pub mod tutoring;
pub mod web;
