//! Echoes the learner's message as `echo <version>: <message>`. Built twice (`echo`, `echo-v2`)
//! from this one file, so a hot-swap test can tell which version answered.
use penpal_host_api::prompt;
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::{ChatMessage, PluginError};

struct Echo;

impl Tutor for Echo {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }
    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
        let content = format!("echo {}: {}", env!("CARGO_PKG_VERSION"), ctx.message);
        Ok(TurnPlan {
            reply: prompt::reply(vec![ChatMessage::system(content)], 0.0, 10),
            analysis: None,
        })
    }
    fn review_turn(
        _: TurnContext,
        reply: String,
        _: Option<String>,
    ) -> Result<TurnReview, PluginError> {
        Ok(TurnReview {
            corrections: vec![],
            vocabulary: vec![],
            level: None,
            debrief: Some(reply),
            dropped: vec![],
        })
    }
}

penpal_host_api::export_tutor!(Echo);
