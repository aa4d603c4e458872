//! The free demo: one anonymous turn with a tutor, stored nowhere, limited per client by the
//! server (so a cleared cookie does not reset it) and by a server-wide daily budget.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::conversations::{ChatMode, Correction, Speaker, Status, Word};
use super::profile::{Cefr, Intensity, Profile, Target, language};
use super::state::TutoringState;
use super::turn::{record_usage, window};
use super::tutor::TurnContext;
use crate::http::{ApiError, ApiResult, ClientIp, ClientKey, Json, report};
use crate::store::now_ms;

/// Longest demo message, in characters.
const MAX_DEMO_CHARS: usize = 500;
const DAY_MS: i64 = 86_400_000;

/// Demo turns per client (an IPv4 address or an IPv6 /64) per UTC day, within a server-wide
/// daily budget: every demo turn is a model call nobody pays for.
#[derive(Debug, Default)]
pub struct DemoLimiter {
    per_day: u32,
    budget: u32,
    used: Mutex<DemoDay>,
}

#[derive(Debug, Default)]
struct DemoDay {
    day: i64,
    total: u32,
    per_client: HashMap<ClientKey, u32>,
}

/// Why a demo turn was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoRefusal {
    /// This client used its turns for today; seconds until tomorrow (UTC).
    Client(u64),
    /// The server's budget for today is spent; seconds until tomorrow (UTC).
    Budget(u64),
}

impl DemoLimiter {
    /// A limiter allowing `per_day` turns per client and `budget` turns in all per day.
    pub fn new(per_day: u32, budget: u32) -> Self {
        DemoLimiter {
            per_day,
            budget,
            used: Mutex::new(DemoDay::default()),
        }
    }

    /// Takes one turn for `client`: `Ok(turns it has left)` or why not.
    pub fn take(&self, client: ClientKey) -> Result<u32, DemoRefusal> {
        self.take_at(client, now_ms())
    }

    fn take_at(&self, client: ClientKey, now: i64) -> Result<u32, DemoRefusal> {
        let today = now.div_euclid(DAY_MS);
        let until_tomorrow = (((today + 1) * DAY_MS - now) / 1000).max(1) as u64;
        let mut d = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if d.day != today {
            *d = DemoDay {
                day: today,
                ..DemoDay::default()
            };
        }
        let used = d.per_client.get(&client).copied().unwrap_or(0);
        if used >= self.per_day {
            return Err(DemoRefusal::Client(until_tomorrow));
        }
        if d.total >= self.budget {
            return Err(DemoRefusal::Budget(until_tomorrow));
        }
        d.total += 1;
        d.per_client.insert(client, used + 1);
        Ok(self.per_day - used - 1)
    }
}

/// A demo turn.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemoChat {
    /// What the visitor says: not blank, at most 500 characters.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
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
    /// Earlier turns of the demo, oldest first (the client keeps them); at most 20.
    #[serde(default)]
    #[schema(max_items = 20)]
    history: Vec<DemoTurn>,
}

/// An earlier demo message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemoTurn {
    /// `learner` or `tutor`.
    #[schema(pattern = "^(learner|tutor)$")]
    role: String,
    /// At most 2,000 characters.
    #[schema(max_length = 2000)]
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
pub fn router() -> OpenApiRouter<TutoringState> {
    OpenApiRouter::new().routes(routes!(demo_chat))
}

#[utoipa::path(post, path = "/v1/demo/chat", tag = "demo", request_body = DemoChat,
    responses((status = 200, body = DemoReply), (status = 429, description = "the day's demo turns are used up")))]
async fn demo_chat(
    State(app): State<TutoringState>,
    client: ClientIp,
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
    let remaining = app.demo.take(client.key()).map_err(|r| match r {
        DemoRefusal::Client(wait) => ApiError::TooMany {
            retry_after: wait,
            message: "the free demo is used up for today: sign up to keep practising".into(),
        },
        DemoRefusal::Budget(wait) => ApiError::TooMany {
            retry_after: wait,
            message: "the free demo is closed for today: sign up to keep practising".into(),
        },
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
            // Checked above: `learner` or `tutor`.
            role: if t.role == "tutor" {
                Speaker::Tutor
            } else {
                Speaker::Learner
            },
            text: t.text,
            created_at: 0,
            status: Status::Ok,
            corrections: vec![],
            vocabulary: vec![],
            debrief: None,
            error: None,
        })
        .collect();
    let ctx = TurnContext {
        profile: profile.for_turn(&lang, None),
        mode: ChatMode::Tutor.wit(),
        scenario: None,
        topic: None,
        history: window(&history, 0, app.context_tokens),
        memory: None,
        pinned: vec![],
        message: text,
        turn: (history.len() / 2) as u32,
    };
    let personality = ChatMode::Tutor.default_personality();
    // What went wrong is logged under a support id; the visitor hears only that it did.
    let unavailable = |e: &dyn std::fmt::Display| {
        let id = report("the demo tutor could not answer", e);
        ApiError::Unavailable(format!(
            "the demo tutor could not answer right now: try again in a moment (support id {id})"
        ))
    };
    let plan = app
        .tutors
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
    let model = |r: &crate::plugins::types::CompletionRequest| {
        r.model
            .clone()
            .unwrap_or_else(|| app.llm.settings().model.clone())
    };
    // The analysis was paid for whether or not the reply came.
    if let (Some((_, used)), Some(request)) = (&analysis, &plan.analysis) {
        record_usage(&app, None, None, &model(request), "demo-analysis", *used).await;
    }
    let (reply, usage) = reply.map_err(|e| unavailable(&e))?;
    record_usage(&app, None, None, &model(&plan.reply), "demo", usage).await;
    let review = app
        .tutors
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
        scripted_model: app.scripted_model,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> ClientKey {
        ClientKey::of(ip.parse().unwrap())
    }

    const NOON: i64 = 20_000 * DAY_MS + DAY_MS / 2;

    #[test]
    fn one_64_shares_one_allowance() {
        let d = DemoLimiter::new(2, 100);
        assert_eq!(d.take_at(key("2001:db8:0:1::1"), NOON), Ok(1));
        assert_eq!(d.take_at(key("2001:db8:0:1::2"), NOON), Ok(0));
        assert_eq!(
            d.take_at(key("2001:db8:0:1::3"), NOON),
            Err(DemoRefusal::Client(43_200)),
            "a fresh address in the same /64 is the same client"
        );
        assert_eq!(d.take_at(key("2001:db8:0:2::1"), NOON), Ok(1));
    }

    #[test]
    fn the_server_budget_caps_every_client_together() {
        let d = DemoLimiter::new(5, 3);
        for i in 0..3 {
            assert!(d.take_at(key(&format!("192.0.2.{i}")), NOON).is_ok());
        }
        assert_eq!(
            d.take_at(key("198.51.100.1"), NOON),
            Err(DemoRefusal::Budget(43_200))
        );
    }

    #[test]
    fn a_new_utc_day_starts_afresh() {
        let d = DemoLimiter::new(1, 1);
        let last_second = 20_001 * DAY_MS - 1000;
        assert_eq!(d.take_at(key("192.0.2.1"), last_second), Ok(0));
        assert_eq!(
            d.take_at(key("192.0.2.1"), last_second),
            Err(DemoRefusal::Client(1))
        );
        assert_eq!(d.take_at(key("192.0.2.1"), last_second + 1000), Ok(0));
    }
}
