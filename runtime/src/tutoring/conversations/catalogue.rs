//! The catalogue: the tutor personalities on offer, with their languages, modes, levels and
//! role-play scenarios.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::http::{ApiError, ApiResult, Json};
use crate::tutoring::profile::Cefr;
use crate::tutoring::state::{TutoringState, school_of};

/// A tutor personality on offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tutor {
    name: String,
    display_name: String,
    description: String,
    languages: Vec<String>,
    modes: Vec<String>,
    levels: Vec<String>,
    scenarios: Vec<ScenarioInfo>,
}

/// A role-play scenario.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScenarioInfo {
    id: String,
    title: String,
    setting: String,
    learner_role: String,
    tutor_role: String,
    goal: String,
}

/// The catalogue's route.
pub fn router() -> OpenApiRouter<TutoringState> {
    OpenApiRouter::new().routes(routes!(tutors))
}

#[utoipa::path(get, path = "/v1/tutors", tag = "conversations",
    responses((status = 200, body = [Tutor], description = "the server's tutors and, signed in, those of the account's schools")))]
async fn tutors(
    State(app): State<TutoringState>,
    user: Result<AuthUser, ApiError>,
) -> ApiResult<Json<Vec<Tutor>>> {
    let schools = match &user {
        Ok(u) => app.scope.schools_of(&u.id).await?,
        Err(_) => Vec::new(),
    };
    let mut out = Vec::new();
    for p in app.tutors.list() {
        if school_of(p.name()).is_some_and(|s| !schools.iter().any(|m| m == s)) {
            continue;
        }
        let Some(info) = &p.manifest.tutor else {
            continue;
        };
        let scenarios = app.tutors.scenarios(p.name()).await.unwrap_or_default();
        out.push(Tutor {
            name: p.name().to_string(),
            display_name: info.display_name.0.clone(),
            description: p.manifest.plugin.description.0.clone(),
            languages: info.languages.0.iter().map(|l| l.0.clone()).collect(),
            modes: info.modes.0.iter().map(|m| m.to_string()).collect(),
            levels: info
                .levels
                .0
                .iter()
                .map(|l| Cefr::from(*l).as_str().to_string())
                .collect(),
            scenarios: scenarios
                .into_iter()
                .map(|s| ScenarioInfo {
                    id: s.id,
                    title: s.title,
                    setting: s.setting,
                    learner_role: s.learner_role,
                    tutor_role: s.tutor_role,
                    goal: s.goal,
                })
                .collect(),
        });
    }
    Ok(Json(out))
}
