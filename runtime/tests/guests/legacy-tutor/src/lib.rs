//! A tutor built against `penpal:plugin@0.1.0`, with the 0.1 WIT and wit-bindgen alone. It
//! reflects what it was given (level, mode, history, profile) so a test can see that the host's
//! conversion to 0.1 lost nothing, and answers a review with one of everything so the
//! conversion back is checked too.

wit_bindgen::generate!({
    path: "../../../../wit/v0.1",
    world: "tutor",
    generate_all,
});

use exports::penpal::plugin::tutoring::{Guest, Scenario, TurnContext, TurnPlan, TurnReview};
use penpal::plugin::types::{
    CefrLevel, ChatMessage, CompletionRequest, Correction, ErrorCategory, LevelSignal, PluginError,
    Role, VocabularyItem,
};

fn code(level: CefrLevel) -> &'static str {
    match level {
        CefrLevel::A1 => "A1",
        CefrLevel::A2 => "A2",
        CefrLevel::B1 => "B1",
        CefrLevel::B2 => "B2",
        CefrLevel::C1 => "C1",
        CefrLevel::C2 => "C2",
    }
}

struct Legacy;

impl Guest for Legacy {
    fn scenarios() -> Vec<Scenario> {
        vec![Scenario {
            id: "bakery".into(),
            title: "At the bakery".into(),
            setting: "A Paris bakery at 8 a.m.".into(),
            learner_role: "customer".into(),
            tutor_role: "baker".into(),
            goal: "Buy two croissants".into(),
        }]
    }

    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {
        let p = &ctx.profile;
        let summary = format!(
            "legacy 0.1 tutor at level {}; mode={:?} intensity={:?} native={} target={} history={} turn={}",
            code(p.level),
            ctx.mode,
            p.correction_intensity,
            p.native_language,
            p.target_language,
            ctx.history.len(),
            ctx.turn
        );
        // Through the 0.1 `log` import, so the host's 0.1 capabilities are exercised too.
        penpal::plugin::log::log(penpal::plugin::log::Level::Debug, &summary);
        let mut messages = vec![ChatMessage {
            role: Role::System,
            content: summary,
        }];
        messages.extend(ctx.history);
        messages.push(ChatMessage {
            role: Role::User,
            content: ctx.message,
        });
        Ok(TurnPlan {
            reply: CompletionRequest {
                messages,
                model: None,
                temperature: Some(0.5),
                max_tokens: Some(50),
                json: false,
            },
            analysis: None,
        })
    }

    fn review_turn(
        ctx: TurnContext,
        reply: String,
        _analysis: Option<String>,
    ) -> Result<TurnReview, PluginError> {
        if ctx.message.is_empty() {
            return Err(PluginError::InvalidInput("an empty message".into()));
        }
        Ok(TurnReview {
            corrections: vec![Correction {
                original: ctx.message.clone(),
                corrected: format!("{} !", ctx.message),
                explanation: "legacy".into(),
                category: ErrorCategory::WordOrder,
            }],
            vocabulary: vec![VocabularyItem {
                term: "croissant".into(),
                translation: "croissant".into(),
                example: Some(reply),
            }],
            level: Some(LevelSignal {
                observed: ctx.profile.level,
                confidence: 0.5,
            }),
            debrief: None,
            dropped: vec![],
        })
    }
}

export!(Legacy);
