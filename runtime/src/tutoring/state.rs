//! What the tutoring room's handlers hold ([`TutoringState`]) and the narrower part a chat turn
//! needs ([`TurnDeps`]), which is all the conversation actors carry.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;

use super::demo::DemoLimiter;
use super::tutor::TutorClient;
use crate::auth::{Gate, Keys};
use crate::http::TrustedProxies;
use crate::llm::LlmClient;
use crate::llm::usage::Pricing;
use crate::store::Db;

/// What a chat turn uses: the database, the model, the tutors, the verbatim window and the
/// model's prices.
#[derive(Clone)]
pub struct TurnDeps {
    /// The database.
    pub db: Db,
    /// The model client.
    pub llm: Arc<LlmClient>,
    /// The tutor personalities, whatever WIT version they target.
    pub tutors: TutorClient,
    /// Token budget of the verbatim window.
    pub context_tokens: usize,
    /// What the model's tokens cost.
    pub pricing: Pricing,
    /// Which schools' own tutors an account may use.
    pub scope: Arc<dyn TutorScope>,
}

/// A tutor installed for one school only runs as `NAME@SCHOOL` (the marketplace installs it);
/// only that school's members see and open it. The schools room knows who belongs where;
/// tutoring sits below it and asks through this.
pub trait TutorScope: Send + Sync {
    /// The schools `user` belongs to.
    fn schools_of<'a>(
        &'a self,
        user: &'a str,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = crate::store::StoreResult<Vec<String>>> + Send + 'a>,
    >;
}

/// The school a tutor's name scopes it to, if any.
pub fn school_of(personality: &str) -> Option<&str> {
    personality.split_once('@').map(|(_, school)| school)
}

/// Conversations running in memory (the actors room keeps them). Deleting a conversation
/// stops its actor here, so nothing is written to a conversation that is gone.
pub trait Running: Send + Sync {
    /// Stops conversation `id`'s actor, if it runs.
    fn forget(&self, id: &str);
}

/// What an account's plan lets it open (the billing room answers; tutoring sits below it).
pub trait PlanGate: Send + Sync {
    /// Why `user` may not open a `mode` conversation with `personality` (what to do, for the
    /// learner), or none when they may.
    fn refuses<'a>(
        &'a self,
        user: &'a str,
        mode: super::conversations::ChatMode,
        personality: &'a str,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = crate::store::StoreResult<Option<String>>> + Send + 'a,
        >,
    >;
}

/// What the tutoring routes use.
#[derive(Clone)]
pub struct TutoringState {
    /// What turns use (the handlers read the database and model through it too).
    pub turns: TurnDeps,
    /// Token keys, to check callers.
    pub keys: Arc<Keys>,
    /// Whose `X-Forwarded-For` is believed (the demo counts per client).
    pub trusted: TrustedProxies,
    /// Demo turns per client and per day.
    pub demo: Arc<DemoLimiter>,
    /// True when no model is configured and the scripted test model answers.
    pub scripted_model: bool,
    /// The running conversations.
    pub running: Arc<dyn Running>,
    /// What each account's plan lets it open.
    pub plans: Arc<dyn PlanGate>,
}

impl Deref for TutoringState {
    type Target = TurnDeps;

    fn deref(&self) -> &TurnDeps {
        &self.turns
    }
}

impl FromRef<TutoringState> for Gate {
    fn from_ref(s: &TutoringState) -> Gate {
        Gate {
            db: s.turns.db.clone(),
            keys: s.keys.clone(),
        }
    }
}

impl FromRef<TutoringState> for TrustedProxies {
    fn from_ref(s: &TutoringState) -> TrustedProxies {
        s.trusted.clone()
    }
}
