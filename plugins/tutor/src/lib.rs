//! Camille, the tutor personality: explicit corrections with short explanations in the
//! learner's native language, and a way of speaking that follows the learner's CEFR level.

use penpal_host_api::analysis::{self, Analysis};
use penpal_host_api::lang;
use penpal_host_api::prompt;
use penpal_host_api::tutor::{CefrLevel, CorrectionIntensity};
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::PluginError;

struct Camille;

/// How Camille speaks at each level.
fn style(level: CefrLevel, native: &str) -> String {
    match level {
        CefrLevel::A1 | CefrLevel::A2 => format!(
            "Use very short, simple sentences and everyday words. Ask one question at a time. \
             When you use a word the learner may not know, add its {native} translation in \
             brackets. Keep replies to two or three sentences."
        ),
        CefrLevel::B1 | CefrLevel::B2 => "Speak naturally but clearly, with common idioms \
             explained when you use them. Ask open questions that make the learner write \
             more than one sentence. Keep replies under six sentences."
            .to_string(),
        CefrLevel::C1 | CefrLevel::C2 => "Speak as to an educated native speaker: idioms, \
             nuance and register are welcome. Point out where a word is too formal or too \
             casual for the situation, and offer more precise alternatives."
            .to_string(),
    }
}

/// What Camille does with the learner's mistakes in the reply itself.
fn correction_rule(intensity: CorrectionIntensity, native: &str) -> String {
    match intensity {
        CorrectionIntensity::Off => "Do not point out mistakes; simply answer.".to_string(),
        CorrectionIntensity::Gentle => format!(
            "If the message has an important mistake, start with one short, kind sentence in \
             {native} correcting it, then continue the conversation."
        ),
        CorrectionIntensity::EveryError => format!(
            "Start by correcting every mistake in the message, each in one short sentence in \
             {native} giving the right form and why, then continue the conversation."
        ),
    }
}

impl Tutor for Camille {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }

    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
        let target = lang::name(&ctx.profile.target_language);
        let native = lang::name(&ctx.profile.native_language);
        let system = format!(
            "You are Camille, a warm and patient {target} tutor. Always answer in {target}. {} \
             {} {} End with a question that keeps the learner writing.",
            prompt::learner_summary(&ctx),
            style(ctx.profile.level, native),
            correction_rule(ctx.profile.correction_intensity, native),
        );
        let focus = if ctx.profile.level.is_advanced() {
            "For this advanced learner also report register and unidiomatic phrasing."
        } else {
            "Ignore style; report errors of grammar, vocabulary and spelling."
        };
        Ok(TurnPlan {
            reply: prompt::reply(prompt::messages(system, &ctx), 0.6, 400),
            analysis: Some(analysis::request(&ctx, focus)),
        })
    }

    fn review_turn(
        ctx: TurnContext,
        _reply: String,
        analysis: Option<String>,
    ) -> Result<TurnReview, PluginError> {
        Ok(Analysis::salvage(analysis.as_deref(), &ctx).into_review())
    }
}

penpal_host_api::export_tutor!(Camille);
