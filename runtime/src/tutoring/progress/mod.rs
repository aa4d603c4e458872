//! Progress: per-learner statistics ([`stats`]), the level estimate offered to the learner
//! ([`level`]), and vocabulary scheduled by spaced repetition (SM-2) with its review API and an
//! Anki CSV export ([`vocabulary`]).

pub mod level;
pub mod stats;
pub mod vocabulary;

pub use level::{LEVEL_EVIDENCE, consider_level};
pub use stats::{Progress, ProgressParams, streak};
pub use vocabulary::{Card, CardParams, Grade, Review, Schedule, anki_csv, vocab_cards};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::tutoring::state::TutoringState;

const DAY_MS: i64 = 86_400_000;

/// The progress routes.
pub fn router() -> OpenApiRouter<TutoringState> {
    OpenApiRouter::new()
        .routes(routes!(stats::progress))
        .routes(routes!(vocabulary::cards))
        .routes(routes!(vocabulary::review))
        .routes(routes!(vocabulary::export_csv))
}
