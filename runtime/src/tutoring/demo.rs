//! The free demo: one anonymous turn with a tutor, stored nowhere, limited per client by the
//! server (so a cleared cookie does not reset it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::conversations::{ChatMode, Correction, Word};
use super::profile::{Cefr, Intensity, Profile, Target, language};
use super::turn::{record_usage, window};
use crate::api::{ApiError, ApiResult, AppState, ClientIp, Json};
use crate::plugins::TurnContext;
use crate::store::now_ms;

/// Longest demo message, in characters.
const MAX_DEMO_CHARS: usize = 500;
const DAY_MS: i64 = 86_400_000;

/// Demo turns per client per UTC day.
#[derive(Debug, Default)]
pub struct DemoLimiter {
    per_day: u32,
    used: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl DemoLimiter {
    /// A limiter allowing `per_day` turns.
    pub fn new(per_day: u32) -> Self {
        DemoLimiter {
            per_day,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one turn for `ip`: `Ok(turns left)` or `Err(seconds until tomorrow)`.
    pub fn take(&self, ip: IpAddr) -> Result<u32, u64> {
        let now = now_ms();
        let today = now.div_euclid(DAY_MS);
        let mut map = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (day, _)| *day == today);
        }
        let entry = map.entry(ip).or_insert((today, 0));
        if entry.0 != today {
            *entry = (today, 0);
        }
        if entry.1 >= self.per_day {
            return Err((((today + 1) * DAY_MS - now) / 1000).max(1) as u64);
        }
        entry.1 += 1;
        Ok(self.per_day - entry.1)
    }
}

/// A demo turn.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemoChat {
    /// What the visitor says.
    message: String,
    /// Target language; `fr` by default.
    #[serde(default)]
    language: Option<String>,
    /// Their level; A2 by default.
    #[serde(default)]
    level: Option<Cefr>,
    /// Their native language, for explanations; `en` by default.
    #[serde(default)]
    native_language: Option<String>,
    /// Earlier turns of the demo, oldest first (the client keeps them).
    #[serde(default)]
    history: Vec<DemoTurn>,
}

/// An earlier demo message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemoTurn {
    /// `learner` or `tutor`.
    role: String,
    text: String,
}

/// The tutor's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DemoReply {
    reply: String,
    corrections: Vec<Correction>,
    vocabulary: Vec<Word>,
    /// Demo turns left today.
    remaining: u32,
    /// Whether the model is penpal's scripted stand-in rather than a real model.
    scripted_model: bool,
}

/// The demo route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(demo_chat))
}

#[utoipa::path(post, path = "/v1/demo/chat", tag = "demo", request_body = DemoChat,
    responses((status = 200, body = DemoReply), (status = 429, description = "the day's demo turns are used up")))]
async fn demo_chat(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<DemoChat>,
) -> ApiResult<Json<DemoReply>> {
    let text = body.message.trim().to_string();
    if text.is_empty() || text.chars().count() > MAX_DEMO_CHARS {
        return Err(ApiError::invalid(
            "message",
            format!("say something in 1 to {MAX_DEMO_CHARS} characters"),
        ));
    }
    if body.history.len() > 20
        || body.history.iter().any(|t| {
            t.text.chars().count() > 2000 || !["learner", "tutor"].contains(&t.role.as_str())
        })
    {
        return Err(ApiError::invalid(
            "history",
            "at most 20 turns, each `learner` or `tutor` and under 2,000 characters",
        ));
    }
    let lang = language("language", body.language.as_deref().unwrap_or("fr"))?;
    let native = language(
        "native_language",
        body.native_language.as_deref().unwrap_or("en"),
    )?;
    let remaining = app.demo.take(ip).map_err(|wait| ApiError::TooMany {
        retry_after: wait,
        message: "the free demo is used up for today: sign up to keep practising".into(),
    })?;
    let mut profile = Profile::new("visitor".into());
    profile.native_language = Some(native);
    profile.targets = vec![Target {
        language: lang.clone(),
        level: body.level.unwrap_or(Cefr::A2),
    }];
    profile.correction_intensity = Intensity::Gentle;
    let history: Vec<_> = body
        .history
        .into_iter()
        .enumerate()
        .map(|(i, t)| super::conversations::Message {
            seq: i as i64 + 1,
            role: t.role,
            text: t.text,
            created_at: 0,
            status: "ok".into(),
            corrections: vec![],
            vocabulary: vec![],
            debrief: None,
            error: None,
        })
        .collect();
    let ctx = TurnContext {
        profile: profile.for_turn(&lang),
        mode: ChatMode::Tutor.wit(),
        scenario: None,
        topic: None,
        history: window(&history, 0, app.settings.context_tokens),
        memory: None,
        pinned: vec![],
        message: text,
        turn: (history.len() / 2) as u32,
    };
    let personality = ChatMode::Tutor.default_personality();
    let unavailable = |e: &dyn std::fmt::Display| {
        ApiError::Unavailable(format!("the demo tutor could not answer: {e}"))
    };
    let plan = app
        .host
        .plan_turn(personality, &ctx)
        .await
        .map_err(|e| unavailable(&e))?;
    let analysis = async {
        match &plan.analysis {
            Some(r) => app.llm.complete(r).await.ok(),
            None => None,
        }
    };
    let (reply, analysis) = tokio::join!(app.llm.complete(&plan.reply), analysis);
    let (reply, usage) = reply.map_err(|e| unavailable(&e))?;
    let model = app.llm.settings().model.clone();
    record_usage(&app, None, None, &model, "demo", usage).await;
    let review = app
        .host
        .review_turn(
            personality,
            &ctx,
            &reply,
            analysis.as_ref().map(|(t, _)| t.as_str()),
        )
        .await
        .map_err(|e| unavailable(&e))?;
    let turn = super::turn::review_to_api(&review);
    Ok(Json(DemoReply {
        reply,
        corrections: turn.0,
        vocabulary: turn.1,
        remaining,
        scripted_model: app.llm_info.scripted,
    }))
}
