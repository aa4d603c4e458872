//! Tutoring: the learner's profile, conversations and their messages, the turn pipeline,
//! conversation memory, progress with spaced-repetition vocabulary, and the free demo.

pub mod conversations;
pub mod demo;
pub mod memory;
pub mod personal;
pub mod profile;
pub mod progress;
pub mod protocol;
pub mod state;
pub mod turn;
pub mod tutor;

/// The tutoring room's routes: profiles, conversations, memory, progress, the demo.
pub fn router(state: state::TutoringState) -> utoipa_axum::router::OpenApiRouter {
    utoipa_axum::router::OpenApiRouter::new()
        .merge(profile::router())
        .merge(conversations::routes::router())
        .merge(conversations::catalogue::router())
        .merge(memory::router())
        .merge(progress::router())
        .merge(demo::router())
        .with_state(state)
}
