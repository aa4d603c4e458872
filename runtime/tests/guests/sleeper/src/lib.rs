//! Sleeps inside a host call, where epochs cannot interrupt it: the wall-clock timeout must.
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::PluginError;

struct Sleeper;

impl Tutor for Sleeper {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }
    fn plan_turn(_: TurnContext) -> Result<TurnPlan, PluginError> {
        std::thread::sleep(std::time::Duration::from_secs(60));
        Err(PluginError::Internal("woke up".into()))
    }
    fn review_turn(
        _: TurnContext,
        _: String,
        _: Option<String>,
    ) -> Result<TurnReview, PluginError> {
        Err(PluginError::Internal("not used".into()))
    }
}

penpal_host_api::export_tutor!(Sleeper);
