//! The learner's profile and onboarding: who they are, what they learn and at which level,
//! how hard to correct them. Every turn reads it fresh, so a change shows in the next reply.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::TutoringState;
use super::tutor as types;
use crate::auth::AuthUser;
use crate::auth::Role;
use crate::auth::routes::user_by_id;
use crate::http::{ApiError, ApiResult, Json};
use crate::store::Db;

/// Languages penpal knows (ISO 639-1); a tag may add a region, as in `pt-BR`.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("ar", "Arabic"),
    ("ca", "Catalan"),
    ("cs", "Czech"),
    ("da", "Danish"),
    ("de", "German"),
    ("el", "Greek"),
    ("en", "English"),
    ("es", "Spanish"),
    ("fi", "Finnish"),
    ("fr", "French"),
    ("he", "Hebrew"),
    ("hi", "Hindi"),
    ("hu", "Hungarian"),
    ("id", "Indonesian"),
    ("it", "Italian"),
    ("ja", "Japanese"),
    ("ko", "Korean"),
    ("nl", "Dutch"),
    ("no", "Norwegian"),
    ("pl", "Polish"),
    ("pt", "Portuguese"),
    ("ro", "Romanian"),
    ("ru", "Russian"),
    ("sv", "Swedish"),
    ("th", "Thai"),
    ("tr", "Turkish"),
    ("uk", "Ukrainian"),
    ("vi", "Vietnamese"),
    ("zh", "Chinese"),
];

/// Checks a BCP 47 language tag against [`LANGUAGES`] and returns it normalised
/// (`pt-br` → `pt-BR`).
pub fn language(field: &'static str, tag: &str) -> ApiResult<String> {
    let tag = tag.trim();
    let (lang, region) = match tag.split_once(['-', '_']) {
        Some((l, r)) => (l.to_lowercase(), Some(r.to_uppercase())),
        None => (tag.to_lowercase(), None),
    };
    let known = LANGUAGES.iter().any(|(code, _)| *code == lang);
    let region_ok = region.as_ref().is_none_or(|r| {
        (r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()))
            || (r.len() == 3 && r.chars().all(|c| c.is_ascii_digit()))
    });
    if !known || !region_ok {
        return Err(ApiError::invalid(
            field,
            format!(
                "unknown language `{tag}`: use a language code such as {}",
                LANGUAGES
                    .iter()
                    .take(6)
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(match region {
        Some(r) => format!("{lang}-{r}"),
        None => lang,
    })
}

/// A CEFR level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[allow(missing_docs)]
pub enum Cefr {
    A1,
    A2,
    B1,
    B2,
    C1,
    C2,
}

impl Cefr {
    /// All levels, lowest first.
    pub const ALL: [Cefr; 6] = [Cefr::A1, Cefr::A2, Cefr::B1, Cefr::B2, Cefr::C1, Cefr::C2];

    /// The level as the plugin contract spells it.
    pub fn wit(self) -> types::CefrLevel {
        match self {
            Cefr::A1 => types::CefrLevel::A1,
            Cefr::A2 => types::CefrLevel::A2,
            Cefr::B1 => types::CefrLevel::B1,
            Cefr::B2 => types::CefrLevel::B2,
            Cefr::C1 => types::CefrLevel::C1,
            Cefr::C2 => types::CefrLevel::C2,
        }
    }

    /// From the plugin contract's spelling.
    pub fn from_wit(l: types::CefrLevel) -> Cefr {
        match l {
            types::CefrLevel::A1 => Cefr::A1,
            types::CefrLevel::A2 => Cefr::A2,
            types::CefrLevel::B1 => Cefr::B1,
            types::CefrLevel::B2 => Cefr::B2,
            types::CefrLevel::C1 => Cefr::C1,
            types::CefrLevel::C2 => Cefr::C2,
        }
    }

    /// 0 for A1 … 5 for C2.
    pub fn rank(self) -> usize {
        self as usize
    }

    /// As written: `B1`.
    pub fn as_str(self) -> &'static str {
        ["A1", "A2", "B1", "B2", "C1", "C2"][self.rank()]
    }
}

/// A manifest's level (`levels = ["B1"]`) in the learner's terms.
impl From<crate::plugins::manifest::Level> for Cefr {
    fn from(l: crate::plugins::manifest::Level) -> Cefr {
        use crate::plugins::manifest::Level;
        match l {
            Level::A1 => Cefr::A1,
            Level::A2 => Cefr::A2,
            Level::B1 => Cefr::B1,
            Level::B2 => Cefr::B2,
            Level::C1 => Cefr::C1,
            Level::C2 => Cefr::C2,
        }
    }
}

/// How many errors to point out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Intensity {
    /// None: just talk.
    Off,
    /// The ones that matter.
    #[default]
    Gentle,
    /// Every one.
    EveryError,
}

impl Intensity {
    fn wit(self) -> types::CorrectionIntensity {
        match self {
            Intensity::Off => types::CorrectionIntensity::Off,
            Intensity::Gentle => types::CorrectionIntensity::Gentle,
            Intensity::EveryError => types::CorrectionIntensity::EveryError,
        }
    }
}

/// A language being learnt, at a level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    /// BCP 47 tag.
    pub language: String,
    /// Self-assessed or confirmed level.
    pub level: Cefr,
}

/// A level the learner's recent turns suggest, offered for them to accept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LevelSuggestion {
    /// The language.
    pub language: String,
    /// Level in the profile now.
    pub current: Cefr,
    /// What recent turns suggest.
    pub suggested: Cefr,
    /// Turns it is based on.
    pub turns: u32,
}

/// What a learner told us about themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    /// How the tutor addresses them.
    pub display_name: String,
    /// BCP 47; explanations are written in it.
    #[serde(default)]
    pub native_language: Option<String>,
    /// Languages being learnt, each with its level.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Why they learn.
    #[serde(default)]
    pub goals: Vec<String>,
    /// What they like talking about.
    #[serde(default)]
    pub interests: Vec<String>,
    /// How many errors to point out.
    #[serde(default)]
    pub correction_intensity: Intensity,
    /// The interface's language.
    #[serde(default = "default_ui")]
    pub interface_language: String,
    /// Whether onboarding is done (native and one target language set).
    #[serde(default)]
    pub onboarded: bool,
    /// A level change recent turns suggest, if any.
    #[serde(default)]
    pub level_suggestion: Option<LevelSuggestion>,
}

fn default_ui() -> String {
    "en".into()
}

/// `user`'s profile: kept in the account's row, which sign-up creates with only a display name
/// (the other fields start at their defaults).
pub async fn load(db: &Db, user: &str) -> ApiResult<Profile> {
    let profile: Option<Option<Profile>> = db
        .one(
            "SELECT VALUE profile FROM type::record('user', $id)",
            json!({"id": user}),
        )
        .await?;
    Ok(profile
        .ok_or(ApiError::NotFound("account"))?
        .unwrap_or_default())
}

impl Default for Profile {
    fn default() -> Self {
        Profile::new("learner".into())
    }
}

impl Profile {
    /// A fresh profile.
    pub fn new(display_name: String) -> Self {
        Profile {
            display_name,
            native_language: None,
            targets: Vec::new(),
            goals: Vec::new(),
            interests: Vec::new(),
            correction_intensity: Intensity::Gentle,
            interface_language: default_ui(),
            onboarded: false,
            level_suggestion: None,
        }
    }

    /// The level for `language` (A1 when it is not among the targets).
    pub fn level(&self, language: &str) -> Cefr {
        self.targets
            .iter()
            .find(|t| t.language == language)
            .map(|t| t.level)
            .unwrap_or(Cefr::A1)
    }

    /// The profile as a tutor plugin sees it, for a conversation in `language` run at
    /// `level` (the learner's own when none).
    pub fn for_turn(&self, language: &str, level: Option<Cefr>) -> types::LearnerProfile {
        types::LearnerProfile {
            display_name: self.display_name.clone(),
            native_language: self.native_language.clone().unwrap_or_else(|| "en".into()),
            target_language: language.to_string(),
            level: level.unwrap_or_else(|| self.level(language)).wit(),
            goals: self.goals.clone(),
            interests: self.interests.clone(),
            correction_intensity: self.correction_intensity.wit(),
        }
    }
}

/// A partial profile: fields left out stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// How the tutor addresses the learner: not blank, at most 60 characters.
    #[schema(min_length = 1, max_length = 60, pattern = r"\S")]
    display_name: Option<String>,
    /// A language code such as `en` or `pt-BR`.
    native_language: Option<String>,
    /// One to five languages to learn, each listed once.
    #[schema(min_items = 1, max_items = 5)]
    targets: Option<Vec<Target>>,
    /// At most 12, each at most 80 characters.
    #[schema(max_items = 12)]
    goals: Option<Vec<String>>,
    /// At most 12, each at most 80 characters.
    #[schema(max_items = 12)]
    interests: Option<Vec<String>>,
    correction_intensity: Option<Intensity>,
    interface_language: Option<String>,
    /// Accept (`true`) or dismiss (`false`) the pending level suggestion.
    accept_level_suggestion: Option<bool>,
}

/// The signed-in account.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    id: String,
    email: String,
    role: Role,
    created_at: i64,
    /// Whether the address is verified (an unverified account works, and is asked to verify).
    email_verified: bool,
    profile: Profile,
}

/// The routes under `/v1/me`.
pub fn router() -> OpenApiRouter<TutoringState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(update_profile))
        .routes(routes!(languages))
}

#[utoipa::path(get, path = "/v1/me", tag = "account", responses((status = 200, body = Me)), security(("bearer" = [])))]
async fn me(State(app): State<TutoringState>, user: AuthUser) -> ApiResult<Json<Me>> {
    let u = user_by_id(&app.db, &user.id).await?;
    Ok(Json(Me {
        id: u.id,
        email: u.email,
        role: u.role,
        created_at: u.created_at,
        email_verified: u.email_verified_at.is_some(),
        profile: load(&app.db, &user.id).await?,
    }))
}

fn short_list(field: &'static str, items: Vec<String>) -> ApiResult<Vec<String>> {
    if items.len() > 12 {
        return Err(ApiError::invalid(field, "list at most 12"));
    }
    let items: Vec<String> = items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if items.iter().any(|s| s.chars().count() > 80) {
        return Err(ApiError::invalid(
            field,
            "keep each item under 80 characters",
        ));
    }
    Ok(items)
}

/// Applies `patch` to `p`, checking every field.
fn apply(mut p: Profile, patch: ProfilePatch) -> ApiResult<Profile> {
    if let Some(name) = patch.display_name {
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(ApiError::invalid("display_name", "use 1 to 60 characters"));
        }
        p.display_name = name;
    }
    if let Some(lang) = patch.native_language {
        p.native_language = Some(language("native_language", &lang)?);
    }
    if let Some(targets) = patch.targets {
        if targets.is_empty() || targets.len() > 5 {
            return Err(ApiError::invalid("targets", "learn 1 to 5 languages"));
        }
        let mut seen = Vec::new();
        for t in targets {
            let language = language("targets", &t.language)?;
            if seen.iter().any(|s: &Target| s.language == language) {
                return Err(ApiError::invalid(
                    "targets",
                    format!("`{language}` is listed twice"),
                ));
            }
            seen.push(Target {
                language,
                level: t.level,
            });
        }
        p.targets = seen;
        p.level_suggestion = None;
    }
    if let Some(goals) = patch.goals {
        p.goals = short_list("goals", goals)?;
    }
    if let Some(interests) = patch.interests {
        p.interests = short_list("interests", interests)?;
    }
    if let Some(i) = patch.correction_intensity {
        p.correction_intensity = i;
    }
    if let Some(ui) = patch.interface_language {
        let ui = language("interface_language", &ui)?;
        if !["en", "fr"].contains(&ui.as_str()) {
            return Err(ApiError::invalid(
                "interface_language",
                "the interface speaks `en` and `fr`",
            ));
        }
        p.interface_language = ui;
    }
    if let Some(accept) = patch.accept_level_suggestion {
        let s = p.level_suggestion.take().ok_or_else(|| {
            ApiError::invalid(
                "accept_level_suggestion",
                "there is no level suggestion to answer",
            )
        })?;
        if accept && let Some(t) = p.targets.iter_mut().find(|t| t.language == s.language) {
            t.level = s.suggested;
        }
    }
    if let (Some(native), Some(_)) = (&p.native_language, p.targets.first())
        && p.targets.iter().any(|t| &t.language == native)
    {
        return Err(ApiError::invalid(
            "targets",
            "a target language cannot be your native language",
        ));
    }
    p.onboarded = p.native_language.is_some() && !p.targets.is_empty();
    Ok(p)
}

#[utoipa::path(patch, path = "/v1/me/profile", tag = "account", request_body = ProfilePatch,
    responses((status = 200, body = Profile), (status = 422, description = "invalid field")), security(("bearer" = [])))]
async fn update_profile(
    State(app): State<TutoringState>,
    user: AuthUser,
    Json(patch): Json<ProfilePatch>,
) -> ApiResult<Json<Profile>> {
    let current = load(&app.db, &user.id).await?;
    let next = apply(current, patch)?;
    app.db
        .exec(
            "UPDATE type::record('user', $id) SET profile = $profile",
            json!({"id": user.id, "profile": next}),
        )
        .await?;
    Ok(Json(next))
}

/// A language penpal knows.
#[derive(Debug, Serialize, ToSchema)]
pub struct Language {
    code: &'static str,
    name: &'static str,
}

#[utoipa::path(get, path = "/v1/languages", tag = "account", responses((status = 200, body = [Language])))]
async fn languages() -> Json<Vec<Language>> {
    Json(
        LANGUAGES
            .iter()
            .map(|(code, name)| Language { code, name })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_checked_and_normalised() {
        assert_eq!(language("f", "pt-br").ok().as_deref(), Some("pt-BR"));
        assert_eq!(language("f", "FR").ok().as_deref(), Some("fr"));
        assert!(language("f", "klingon").is_err());
        assert!(language("f", "fr-1").is_err());
    }

    #[test]
    fn onboarding_completes_and_rejects_nonsense() {
        let p = apply(
            Profile::default(),
            ProfilePatch {
                native_language: Some("en".into()),
                targets: Some(vec![Target {
                    language: "fr".into(),
                    level: Cefr::B1,
                }]),
                ..Default::default()
            },
        )
        .expect("valid");
        assert!(p.onboarded);
        assert_eq!(p.level("fr"), Cefr::B1);
        let same = ProfilePatch {
            targets: Some(vec![Target {
                language: "en".into(),
                level: Cefr::A1,
            }]),
            ..Default::default()
        };
        assert!(apply(p, same).is_err());
    }
}
