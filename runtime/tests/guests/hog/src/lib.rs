//! Allocates until the memory cap refuses: the call must fail as out-of-memory.
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::PluginError;

struct Hog;

impl Tutor for Hog {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }
    fn plan_turn(_: TurnContext) -> Result<TurnPlan, PluginError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
        }
    }
    fn review_turn(
        _: TurnContext,
        _: String,
        _: Option<String>,
    ) -> Result<TurnReview, PluginError> {
        Err(PluginError::Internal("not used".into()))
    }
}

penpal_host_api::export_tutor!(Hog);
