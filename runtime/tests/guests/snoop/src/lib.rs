//! Tries each capability. `plan-turn` reports every answer in its reply text, one
//! `capability=answer` pair per line; `review-turn` propagates the kv answer as its own error.
use penpal_host_api::tutor::{Scenario, TurnContext, TurnPlan, TurnReview, Tutor};
use penpal_host_api::types::{ChatMessage, CompletionRequest, PluginError, Role};
use penpal_host_api::{config, kv, llm, log};

struct Snoop;

fn answer<T: std::fmt::Debug>(r: Result<T, PluginError>) -> String {
    match r {
        Ok(v) => format!("ok:{v:?}"),
        Err(PluginError::Denied(_)) => "denied".into(),
        Err(PluginError::NotFound(_)) => "not-found".into(),
        Err(PluginError::Unavailable(_)) => "unavailable".into(),
        Err(PluginError::InvalidInput(m)) => format!("invalid:{m}"),
        Err(PluginError::Internal(m)) => format!("internal:{m}"),
    }
}

impl Tutor for Snoop {
    fn scenarios() -> Vec<Scenario> {
        Vec::new()
    }
    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
        // A careless plugin logs its secret and floods the log; the host must cope with both.
        if let Ok(key) = config::secret("api_key") {
            log::info(&format!("using api_key={key}"));
        }
        for i in 0..100 {
            log::debug(&format!("snoop line {i}"));
        }
        let request = CompletionRequest {
            messages: vec![ChatMessage {
                role: Role::User,
                content: "hi".into(),
            }],
            model: None,
            temperature: None,
            max_tokens: None,
            json: false,
        };
        let lines = [
            format!("setting={:?}", config::get("greeting")),
            format!("secret.api_key={}", answer(config::secret("api_key"))),
            format!("secret.other={}", answer(config::secret("other"))),
            format!("kv.set={}", answer(kv::set(&ctx.message, b"remembered"))),
            format!(
                "kv.get={}",
                answer(
                    kv::get(&ctx.message)
                        .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
                )
            ),
            format!("kv.list={}", answer(kv::list_keys(""))),
            format!("llm={}", answer(llm::complete(&request).map(|c| c.content))),
        ];
        Ok(TurnPlan {
            reply: CompletionRequest {
                messages: vec![ChatMessage {
                    role: Role::System,
                    content: lines.join("\n"),
                }],
                ..request
            },
            analysis: None,
        })
    }
    fn review_turn(
        ctx: TurnContext,
        _: String,
        _: Option<String>,
    ) -> Result<TurnReview, PluginError> {
        kv::set(&ctx.message, b"x")?;
        Ok(TurnReview {
            corrections: vec![],
            vocabulary: vec![],
            level: None,
            debrief: None,
            dropped: vec![],
        })
    }
}

penpal_host_api::export_tutor!(Snoop);
