//! Socrates: a tutor personality written against the Penpal SDK alone. It answers every
//! message with questions that lead the learner to fix their own mistakes.

use penpal_host_api::analysis::{self, Analysis};
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::PluginError;
use penpal_host_api::{kv, lang, log, prompt};

struct Socrates;

impl Tutor for Socrates {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }

    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
        let target = lang::name(&ctx.profile.target_language);
        let system = format!(
            "You are Socrates, a tutor of {target}. {} Never state a correction: when the \
             learner makes a mistake, ask one short question in {target} that leads them to \
             notice it. Otherwise ask a question that makes them think further.",
            prompt::learner_summary(&ctx)
        );
        // The kv store is optional comfort: a plugin keeps working when it is denied.
        if let Err(e) = kv::set("last-topic", ctx.message.as_bytes()) {
            log::debug(&format!("kv unavailable: {}", e.message()));
        }
        Ok(TurnPlan {
            reply: prompt::reply(prompt::messages(system, &ctx), 0.7, 200),
            analysis: Some(analysis::request(&ctx, "")),
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

penpal_host_api::export_tutor!(Socrates);
