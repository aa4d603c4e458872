//! Spins forever: the CPU deadline must stop it.
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::PluginError;

struct Looper;

impl Tutor for Looper {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }
    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
        let mut n: u64 = ctx.turn.into();
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
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

penpal_host_api::export_tutor!(Looper);
