//! Fetches the URL in the learner's message: `ok <status> <body>` or `err <error kind>`.
use penpal_host_api::http;
use penpal_host_api::prompt;
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::{ChatMessage, PluginError};

struct Fetcher;

impl Tutor for Fetcher {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }
    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
        let report = match http::get(&ctx.message) {
            Ok(r) => format!("ok {} {}", r.status, r.text()),
            Err(PluginError::Denied(_)) => "err denied".to_string(),
            Err(e) => format!("err {e:?}"),
        };
        Ok(TurnPlan {
            reply: prompt::reply(vec![ChatMessage::system(report)], 0.0, 10),
            analysis: None,
        })
    }
    fn review_turn(
        _: TurnContext,
        _: String,
        _: Option<String>,
    ) -> Result<TurnReview, PluginError> {
        Ok(TurnReview::empty())
    }
}

penpal_host_api::export_tutor!(Fetcher);
