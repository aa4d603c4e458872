//! Panics unless the learner says `behave`: the call must fail with the panic's message, and a
//! supervisor's probe can succeed. It first logs the learner's words and puts them in its
//! panic, as a plugin forging log lines would.
use penpal_host_api::prompt;
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::{ChatMessage, PluginError};

struct Panicker;

impl Tutor for Panicker {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }
    #[allow(clippy::panic)]
    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
        if ctx.message != "behave" {
            penpal_host_api::log::info(&ctx.message);
            panic!("the tutor fell over on turn {}: {}", ctx.turn, ctx.message)
        }
        Ok(TurnPlan {
            reply: prompt::reply(vec![ChatMessage::system(ctx.message)], 0.0, 10),
            analysis: None,
        })
    }
    fn review_turn(
        _: TurnContext,
        _: String,
        _: Option<String>,
    ) -> Result<TurnReview, PluginError> {
        Err(PluginError::Internal("not used".into()))
    }
}

penpal_host_api::export_tutor!(Panicker);
