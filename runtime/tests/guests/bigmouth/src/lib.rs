//! Returns far more than any plan needs: the host must refuse the output.
use penpal_host_api::prompt;
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::{ChatMessage, PluginError};

struct Bigmouth;

impl Tutor for Bigmouth {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }
    fn plan_turn(_: TurnContext) -> Result<TurnPlan, PluginError> {
        let content = "blah ".repeat(8 << 20 >> 2);
        Ok(TurnPlan {
            reply: prompt::reply(vec![ChatMessage::system(content)], 0.0, 10),
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

penpal_host_api::export_tutor!(Bigmouth);
