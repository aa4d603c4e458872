//! The tutoring room's client for the `tutor` world: the one place that knows a tutor can be
//! built against `penpal:plugin@0.1` or `@0.2`, and that counts what a tutor returns.
//!
//! The rest of the room speaks the 0.2 types re-exported here; a 0.1 tutor's context is
//! converted down and its answers converted up, so a personality built for 0.1 keeps working
//! unchanged beside the ones built for 0.2.

use std::sync::Arc;

use crate::plugins::bindings::{WitVersion, v0_1, v0_2};
use crate::plugins::{CallError, Kind, OutputSize, PluginHost, lift};

pub use v0_2::tutor::exports::penpal::plugin::tutoring::{
    CefrLevel, ChatMode, Correction, CorrectionIntensity, ErrorCategory, LearnerProfile,
    LevelSignal, Scenario, TurnContext, TurnPlan, TurnReview, VocabularyItem,
};

use v0_1::tutor::exports::penpal::plugin::tutoring as old;

/// Calls tutor personalities, whatever WIT version they were built against.
#[derive(Clone)]
pub struct TutorClient {
    host: Arc<PluginHost>,
}

/// Calls `$call` on tutor `$name` at whichever WIT version it targets: as is on a 0.2 tutor,
/// and on a 0.1 tutor with the context converted down (`$ctx` is rebound to the converted
/// copy) and the answer converted up by `$up`.
macro_rules! either_version {
    ($self:ident, $name:ident, $function:literal, $ctx:ident,
     |$t:ident, $store:ident| $call:expr, up: $up:expr) => {{
        let plugin = $self.host.get_kind($name, Kind::Tutor)?;
        match plugin.world.wit {
            WitVersion::V0_2 => {
                $self
                    .host
                    .call(
                        &plugin,
                        $function,
                        |$t: v0_2::tutor::Tutor, mut $store| async move {
                            let r = $call.await;
                            ($store, lift(r))
                        },
                    )
                    .await
            }
            WitVersion::V0_1 => {
                let old = down_context($ctx);
                let $ctx = &old;
                $self
                    .host
                    .call(
                        &plugin,
                        $function,
                        |$t: v0_1::tutor::Tutor, mut $store| async move {
                            let r = $call.await;
                            ($store, lift(r.map(|r| r.map($up))))
                        },
                    )
                    .await
            }
        }
    }};
}

impl TutorClient {
    /// A client over `host`'s installed tutors.
    pub fn new(host: Arc<PluginHost>) -> Self {
        TutorClient { host }
    }

    /// The tutor called `name`, if one is loaded.
    pub fn get(&self, name: &str) -> Option<Arc<crate::plugins::Installed>> {
        self.host
            .get(name)
            .filter(|p| p.manifest.plugin.kind == crate::plugins::Kind::Tutor)
    }

    /// Every loaded tutor.
    pub fn list(&self) -> Vec<Arc<crate::plugins::Installed>> {
        self.host
            .list()
            .into_iter()
            .filter(|p| p.manifest.plugin.kind == crate::plugins::Kind::Tutor)
            .collect()
    }

    /// The scenarios tutor `name` offers.
    pub async fn scenarios(&self, name: &str) -> Result<Vec<Scenario>, CallError> {
        let plugin = self.host.get_kind(name, Kind::Tutor)?;
        // `scenarios` cannot fail, so there is no guest error to lift.
        match plugin.world.wit {
            WitVersion::V0_2 => {
                self.host
                    .call(
                        &plugin,
                        "scenarios",
                        |t: v0_2::tutor::Tutor, mut store| async move {
                            let r = t.penpal_plugin_tutoring().call_scenarios(&mut store).await;
                            (store, r.map(Ok))
                        },
                    )
                    .await
            }
            WitVersion::V0_1 => {
                self.host
                    .call(
                        &plugin,
                        "scenarios",
                        |t: v0_1::tutor::Tutor, mut store| async move {
                            let r = t.penpal_plugin_tutoring().call_scenarios(&mut store).await;
                            (
                                store,
                                r.map(|s| Ok(s.into_iter().map(up_scenario).collect())),
                            )
                        },
                    )
                    .await
            }
        }
    }

    /// Tutor `name`'s plan for the turn `ctx`.
    pub async fn plan_turn(&self, name: &str, ctx: &TurnContext) -> Result<TurnPlan, CallError> {
        either_version!(self, name, "plan-turn", ctx, |t, store| t
            .penpal_plugin_tutoring()
            .call_plan_turn(&mut store, ctx), up: up_plan)
    }

    /// Tutor `name`'s review of the turn `ctx`, given what the model answered.
    pub async fn review_turn(
        &self,
        name: &str,
        ctx: &TurnContext,
        reply: &str,
        analysis: Option<&str>,
    ) -> Result<TurnReview, CallError> {
        either_version!(self, name, "review-turn", ctx, |t, store| t
            .penpal_plugin_tutoring()
            .call_review_turn(&mut store, ctx, reply, analysis), up: up_review)
    }
}

impl OutputSize for TurnPlan {
    fn output_size(&self) -> usize {
        self.reply.output_size() + self.analysis.output_size()
    }
}

impl OutputSize for TurnReview {
    fn output_size(&self) -> usize {
        let c: usize = self
            .corrections
            .iter()
            .map(|c| c.original.len() + c.corrected.len() + c.explanation.len() + 8)
            .sum();
        let v: usize = self
            .vocabulary
            .iter()
            .map(|v| v.term.len() + v.translation.len() + v.example.output_size() + 8)
            .sum();
        c + v + self.dropped.output_size() + self.debrief.output_size()
    }
}

impl OutputSize for Scenario {
    fn output_size(&self) -> usize {
        self.id.len()
            + self.title.len()
            + self.setting.len()
            + self.learner_role.len()
            + self.tutor_role.len()
            + self.goal.len()
    }
}

// --- 0.1 ↔ 0.2: the same shapes; in 0.1 the tutor's types sat in the shared `types`. ---

macro_rules! same_enum {
    ($from:path => $to:path { $($variant:ident),* }) => {{
        use $from as F;
        use $to as T;
        |v: F| match v { $(F::$variant => T::$variant),* }
    }};
}

fn down_level(l: CefrLevel) -> v0_1::types::CefrLevel {
    same_enum!(CefrLevel => v0_1::types::CefrLevel { A1, A2, B1, B2, C1, C2 })(l)
}

fn up_level(l: v0_1::types::CefrLevel) -> CefrLevel {
    same_enum!(v0_1::types::CefrLevel => CefrLevel { A1, A2, B1, B2, C1, C2 })(l)
}

fn down_context(c: &TurnContext) -> old::TurnContext {
    let p = &c.profile;
    old::TurnContext {
        profile: v0_1::types::LearnerProfile {
            display_name: p.display_name.clone(),
            native_language: p.native_language.clone(),
            target_language: p.target_language.clone(),
            level: down_level(p.level),
            goals: p.goals.clone(),
            interests: p.interests.clone(),
            correction_intensity: same_enum!(
                CorrectionIntensity => v0_1::types::CorrectionIntensity { Off, Gentle, EveryError }
            )(p.correction_intensity),
        },
        mode: same_enum!(ChatMode => v0_1::types::ChatMode { Tutor, Conversation, RolePlay })(
            c.mode,
        ),
        scenario: c.scenario.clone(),
        topic: c.topic.clone(),
        history: c.history.iter().cloned().map(Into::into).collect(),
        memory: c.memory.clone(),
        pinned: c.pinned.clone(),
        message: c.message.clone(),
        turn: c.turn,
    }
}

fn up_plan(p: old::TurnPlan) -> TurnPlan {
    TurnPlan {
        reply: p.reply.into(),
        analysis: p.analysis.map(Into::into),
    }
}

fn up_review(r: old::TurnReview) -> TurnReview {
    TurnReview {
        corrections: r
            .corrections
            .into_iter()
            .map(|c| Correction {
                original: c.original,
                corrected: c.corrected,
                explanation: c.explanation,
                category: same_enum!(v0_1::types::ErrorCategory => ErrorCategory {
                    Grammar, Vocabulary, Spelling, Punctuation, WordOrder, Register, Other
                })(c.category),
            })
            .collect(),
        vocabulary: r
            .vocabulary
            .into_iter()
            .map(|v| VocabularyItem {
                term: v.term,
                translation: v.translation,
                example: v.example,
            })
            .collect(),
        level: r.level.map(|l| LevelSignal {
            observed: up_level(l.observed),
            confidence: l.confidence,
        }),
        debrief: r.debrief,
        dropped: r.dropped,
    }
}

fn up_scenario(s: old::Scenario) -> Scenario {
    Scenario {
        id: s.id,
        title: s.title,
        setting: s.setting,
        learner_role: s.learner_role,
        tutor_role: s.tutor_role,
        goal: s.goal,
    }
}
