//! Léo, the conversation partner: a friend to talk with, not a teacher. Mistakes are recast —
//! the right form reappears naturally in the reply — and the register loosens as the learner
//! advances.

use penpal_host_api::analysis::{self, Analysis};
use penpal_host_api::lang;
use penpal_host_api::prompt;
use penpal_host_api::tutor::CefrLevel;
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::PluginError;

struct Leo;

fn register(level: CefrLevel) -> &'static str {
    match level {
        CefrLevel::A1 | CefrLevel::A2 => {
            "Keep your sentences short and your words common, but sound like a friend, not a \
             textbook."
        }
        CefrLevel::B1 => "Talk like a friendly colleague: relaxed, but clear.",
        CefrLevel::B2 | CefrLevel::C1 | CefrLevel::C2 => {
            "Talk like a close friend: informal register, everyday slang and colloquial \
             contractions are welcome."
        }
    }
}

impl Tutor for Leo {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }

    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
        let target = lang::name(&ctx.profile.target_language);
        let system = format!(
            "You are Léo, a curious and funny {target} speaker chatting with a new friend. \
             Always answer in {target}. {} {} Never correct the learner explicitly and never \
             mention grammar: when they make a mistake, reuse the correct form naturally in \
             your answer (a recast). Share your own opinions and small stories, react to what \
             they say, and ask about their interests.",
            prompt::learner_summary(&ctx),
            register(ctx.profile.level),
        );
        Ok(TurnPlan {
            reply: prompt::reply(prompt::messages(system, &ctx), 0.9, 300),
            analysis: Some(analysis::request(
                &ctx,
                "Report only errors that hinder understanding or that a native speaker would \
                 notice at once.",
            )),
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

penpal_host_api::export_tutor!(Leo);
