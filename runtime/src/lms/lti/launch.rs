//! The launch: OIDC third-party login initiation, then the id token's checks, then what a
//! verified launch makes (an account linked by issuer and `sub`, a school membership, the
//! course as a class). Every check of the token runs before anything is stored; a failed
//! launch stores nothing but the spent `state`.
//!
//! The checks, in order: `state` known, unspent and young (single use: spent as it is read);
//! the id token's own ([`super::id_token`]: RS256, the platform's key by `kid`, signature,
//! `iss`, `aud`/`azp`, `exp`/`iat`, the `nonce` sent with this `state`); the deployment one
//! the school registered; `version` 1.3.0; a message type penpal answers.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::jwks::PlatformKeys;
use super::platforms::{self, Platform};
use super::{DEEP_LINKING, RESOURCE_LINK};
use crate::auth::tokens::{hash_token, random_token};
use crate::lms::classes::{self, ClassRole};
use crate::lms::platform::{CourseRole, LmsClient};
use crate::lms::schools::{self, Refused, SchoolRole};
use crate::store::{Db, StoreError, now_ms};
use crate::tutoring::profile::Cefr;

pub use super::id_token::SKEW_S;
/// How long a login's `state` can come back.
pub const STATE_TTL_MS: i64 = 300_000;

/// Why a launch was refused; each is a 4xx the platform's frame shows.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No platform is registered for this issuer and client id.
    #[error(
        "no LMS platform is registered for issuer `{0}` with this client id: a school admin registers it in penpal first"
    )]
    UnknownPlatform(String),
    /// The target is not one of penpal's pages.
    #[error("the launch's target_link_uri is not a penpal page")]
    Target,
    /// A parameter is missing.
    #[error("the login is missing `{0}`")]
    Missing(&'static str),
    /// The state is unknown, spent or expired.
    #[error("this launch's state is unknown, used or expired: launch again from the course")]
    State,
    /// The token is not RS256.
    #[error("the id token is signed with {0}; LTI needs RS256")]
    Algorithm(String),
    /// The token is malformed or names no key.
    #[error("the id token is malformed: {0}")]
    Malformed(String),
    /// The key is unknown or the signature wrong.
    #[error("the id token's signature does not verify: {0}")]
    Signature(String),
    /// A claim is wrong.
    #[error("the id token's `{0}` is wrong: {1}")]
    Claim(&'static str, String),
    /// The platform's keys could not be read.
    #[error("the platform's keys could not be fetched: {0}")]
    Unreachable(String),
    /// The school has no seat for a new learner.
    #[error("{0}")]
    Refused(String),
}

/// A launch whose token passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The platform it came from.
    pub platform: Platform,
    /// The token's claims.
    pub claims: Value,
    /// What a deep-linking request asks for (checked: a return URL); none for a resource link.
    pub deep_link: Option<super::deep_link::Request>,
}

/// The parameters of a login initiation (GET query or POST form).
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
pub struct LoginParams {
    /// The platform's issuer.
    pub iss: Option<String>,
    /// The platform's opaque user hint, passed back.
    pub login_hint: Option<String>,
    /// Where the launch should land.
    pub target_link_uri: Option<String>,
    /// The platform's opaque message hint, passed back.
    pub lti_message_hint: Option<String>,
    /// Penpal's client id at the platform.
    pub client_id: Option<String>,
    /// The deployment launching.
    pub lti_deployment_id: Option<String>,
}

/// What launches use.
#[derive(Clone)]
pub struct Lti {
    /// The database.
    pub db: Db,
    /// Platforms' keys.
    pub keys: Arc<PlatformKeys>,
    /// The LMS plugins.
    pub lms: LmsClient,
    /// Where learners reach penpal (no trailing slash).
    pub public_url: String,
}

#[derive(Deserialize)]
struct StateRow {
    platform: String,
    nonce: String,
}

impl Lti {
    /// penpal's launch URL (the platform posts id tokens here).
    pub fn launch_url(&self) -> String {
        format!("{}/lti/launch", self.public_url)
    }

    /// Starts a login: stores a fresh `state` and `nonce` and answers the platform's
    /// authorization URL to redirect to.
    pub async fn login(&self, p: &LoginParams) -> Result<String, Refusal> {
        let iss = p.iss.as_deref().ok_or(Refusal::Missing("iss"))?;
        let hint = p
            .login_hint
            .as_deref()
            .ok_or(Refusal::Missing("login_hint"))?;
        let target = p
            .target_link_uri
            .as_deref()
            .ok_or(Refusal::Missing("target_link_uri"))?;
        if !(target == self.public_url || target.starts_with(&format!("{}/", self.public_url))) {
            return Err(Refusal::Target);
        }
        let platform = platforms::find(&self.db, iss, p.client_id.as_deref())
            .await
            .map_err(|e| Refusal::Unreachable(e.to_string()))?
            .ok_or_else(|| Refusal::UnknownPlatform(iss.to_string()))?;
        let state = random_token();
        let nonce = random_token();
        self.db
            .exec(
                "CREATE type::record('lti_state', $id) CONTENT { platform: $p, nonce: $nonce, target: $target, expires_at: $exp }",
                json!({"id": hash_token(&state), "p": platform.id, "nonce": nonce, "target": target,
                       "exp": now_ms() + STATE_TTL_MS}),
            )
            .await
            .map_err(|e| Refusal::Unreachable(e.to_string()))?;
        let mut url = reqwest::Url::parse(&platform.auth_url)
            .map_err(|e| Refusal::Unreachable(format!("the platform's auth URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("scope", "openid")
                .append_pair("response_type", "id_token")
                .append_pair("response_mode", "form_post")
                .append_pair("prompt", "none")
                .append_pair("client_id", &platform.client_id)
                .append_pair("redirect_uri", &self.launch_url())
                .append_pair("login_hint", hint)
                .append_pair("state", &state)
                .append_pair("nonce", &nonce);
            if let Some(m) = &p.lti_message_hint {
                q.append_pair("lti_message_hint", m);
            }
        }
        Ok(url.to_string())
    }

    /// Checks a launch's `id_token` against the `state` it came back with.
    pub async fn verify(&self, id_token: &str, state: &str) -> Result<Verified, Refusal> {
        // Spent as it is read: a replayed form post finds nothing.
        let row: Option<StateRow> = self
            .db
            .one(
                "DELETE type::record('lti_state', $id) WHERE expires_at > $now RETURN BEFORE",
                json!({"id": hash_token(state), "now": now_ms()}),
            )
            .await
            .map_err(|e| Refusal::Unreachable(e.to_string()))?;
        let row = row.ok_or(Refusal::State)?;
        let platform = platforms::get(&self.db, &row.platform)
            .await
            .map_err(|e| Refusal::Unreachable(e.to_string()))?
            .ok_or_else(|| Refusal::UnknownPlatform("(removed)".into()))?;
        let c = super::id_token::check(
            &self.keys,
            id_token,
            &super::id_token::Expected {
                issuer: &platform.issuer,
                client_id: &platform.client_id,
                jwks_url: &platform.jwks_url,
                nonce: &row.nonce,
            },
        )
        .await?;
        let claim = |name: &str| c.get(format!("https://purl.imsglobal.org/spec/lti/claim/{name}"));
        let deployment = claim("deployment_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !platform.deployment_ids.iter().any(|d| d == deployment) {
            return Err(Refusal::Claim(
                "deployment_id",
                format!("`{deployment}` is not a deployment the school registered"),
            ));
        }
        if claim("version").and_then(Value::as_str) != Some("1.3.0") {
            return Err(Refusal::Claim("version", "penpal speaks LTI 1.3.0".into()));
        }
        let message_type = claim("message_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if message_type != RESOURCE_LINK && message_type != DEEP_LINKING {
            return Err(Refusal::Claim(
                "message_type",
                format!("penpal answers {RESOURCE_LINK} and {DEEP_LINKING}, not `{message_type}`"),
            ));
        }
        let deep_link = if message_type == DEEP_LINKING {
            let req = super::deep_link::Request::from_claims(&c)
                .filter(|r| {
                    reqwest::Url::parse(&r.return_url)
                        .is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
                })
                .ok_or_else(|| {
                    Refusal::Claim(
                        "deep_linking_settings",
                        "a deep-linking request needs a deep_link_return_url".into(),
                    )
                })?;
            Some(req)
        } else {
            None
        };
        metrics::counter!("penpal_lti_launches_total", "platform" => platform.plugin.clone())
            .increment(1);
        Ok(Verified {
            platform,
            claims: c,
            deep_link,
        })
    }
}

/// The account of (`issuer`, `sub`) in `school`: the one linked already, or a new one made
/// from what the platform says of them (`email`, `name`) and linked. Launches and roster syncs
/// share it. A link is the school's own: Canvas and Blackboard give every instance one issuer,
/// so another school's platform naming the same `sub` must not reach this account.
pub async fn linked_account(
    db: &Db,
    school: &str,
    issuer: &str,
    sub: &str,
    email: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<String> {
    let find = || async {
        db.one::<String>(
            "SELECT VALUE user FROM type::record('lti_user', [$school, $iss, $sub])",
            json!({"school": school, "iss": issuer, "sub": sub}),
        )
        .await
    };
    if let Some(u) = find().await? {
        return Ok(u);
    }
    let made = crate::auth::handoff::external_account(db, email, name.unwrap_or("Learner")).await?;
    let created = db
        .exec(
            "CREATE type::record('lti_user', [$school, $iss, $sub]) CONTENT { school: $school, issuer: $iss, sub: $sub,
                 user: $u, created_at: $now }",
            json!({"school": school, "iss": issuer, "sub": sub, "u": made, "now": now_ms()}),
        )
        .await;
    match created {
        Ok(()) => Ok(made),
        // Two first arrivals at once: the other one linked first.
        Err(StoreError::Conflict(_)) => find()
            .await?
            .ok_or_else(|| anyhow::anyhow!("the account link vanished")),
        Err(e) => Err(e.into()),
    }
}

/// `user`'s role in `school`: theirs if they are a member, else they join with the role their
/// course role maps to (teachers and administrators teach, everyone else learns) — refused
/// when the school has no seat for a learner.
pub async fn school_place(
    db: &Db,
    school: &str,
    user: &str,
    course: CourseRole,
) -> crate::store::StoreResult<Result<SchoolRole, Refused>> {
    if let Some(r) = schools::role_of(db, school, user).await? {
        return Ok(Ok(r));
    }
    let wanted = match course {
        CourseRole::Teacher | CourseRole::Administrator => SchoolRole::Teacher,
        CourseRole::Learner | CourseRole::Other => SchoolRole::Learner,
    };
    Ok(match schools::join(db, school, user, wanted).await? {
        Ok(()) | Err(Refused::Member) => Ok(wanted),
        Err(r) => Err(r),
    })
}

/// Where a verified launch lands.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The account.
    pub user: String,
    /// The course's class.
    pub class: String,
    /// Their role in it.
    pub role: ClassRole,
    /// The assignment a link opens, if any.
    pub assignment: Option<String>,
    /// The pick a teacher came to make (deep linking), if they did.
    pub pick: Option<String>,
}

impl Lti {
    /// Provisions what a verified launch names: the account (linked by issuer and `sub`), the
    /// school membership, the course as a class and the caller's place in it.
    pub async fn arrive(&self, v: &Verified) -> Result<Arrival, Refusal> {
        let store = |e: StoreError| Refusal::Unreachable(e.to_string());
        let launch = self
            .lms
            .read_launch(&v.platform.plugin, &v.claims.to_string())
            .await
            .map_err(|e| Refusal::Claim("claims", e.to_string()))?;
        let school = &v.platform.school;
        let user = linked_account(
            &self.db,
            school,
            &v.platform.issuer,
            &launch.user_id,
            launch.email.as_deref(),
            launch.name.as_deref(),
        )
        .await
        .map_err(|e| Refusal::Unreachable(e.to_string()))?;
        let school_role = school_place(&self.db, school, &user, launch.role)
            .await
            .map_err(store)?
            .map_err(|r| Refusal::Refused(r.to_string()))?;
        let role = if school_role == SchoolRole::Learner {
            ClassRole::Learner
        } else {
            ClassRole::Teacher
        };
        let context: Option<String> = self
            .db
            .one(
                "SELECT VALUE class FROM type::record('lti_context', [$p, $ctx])",
                json!({"p": v.platform.id, "ctx": launch.context_id}),
            )
            .await
            .map_err(store)?;
        let class = match context {
            Some(c) => c,
            None => {
                let name = launch
                    .context_title
                    .clone()
                    .unwrap_or_else(|| format!("Course {}", launch.context_id));
                let custom = v
                    .claims
                    .get("https://purl.imsglobal.org/spec/lti/claim/custom");
                let language = custom
                    .and_then(|c| c.get("penpal_language"))
                    .and_then(Value::as_str)
                    .and_then(|l| crate::tutoring::profile::language("language", l).ok())
                    .unwrap_or_else(|| "en".to_string());
                let level = custom
                    .and_then(|c| c.get("penpal_level"))
                    .and_then(|l| serde_json::from_value::<Cefr>(l.clone()).ok())
                    .unwrap_or(Cefr::A2);
                let id = classes::create(&self.db, school, &name, &language, level, &user, false)
                    .await
                    .map_err(store)?;
                let linked = self
                    .db
                    .exec(
                        "CREATE type::record('lti_context', [$p, $ctx]) CONTENT { platform: $p, context_id: $ctx, class: $class }",
                        json!({"p": v.platform.id, "ctx": launch.context_id, "class": id}),
                    )
                    .await;
                match linked {
                    Ok(()) => id,
                    Err(StoreError::Conflict(_)) => {
                        classes::delete(&self.db, &id).await.map_err(store)?;
                        self.db
                            .one(
                                "SELECT VALUE class FROM type::record('lti_context', [$p, $ctx])",
                                json!({"p": v.platform.id, "ctx": launch.context_id}),
                            )
                            .await
                            .map_err(store)?
                            .ok_or(Refusal::State)?
                    }
                    Err(e) => return Err(store(e)),
                }
            }
        };
        // The course's service endpoints, for roster sync and grades.
        self.db
            .exec(
                "UPDATE type::record('lti_context', [$p, $ctx]) SET memberships_url = $m ?? memberships_url,
                     line_items_url = $li ?? line_items_url",
                json!({"p": v.platform.id, "ctx": launch.context_id, "m": launch.memberships_url,
                       "li": launch.grades.as_ref().and_then(|g| g.line_items.clone())}),
            )
            .await
            .map_err(store)?;
        if classes::role_in(&self.db, &class, &user)
            .await
            .map_err(store)?
            .is_none()
        {
            classes::add(&self.db, &class, school, &user, role)
                .await
                .map_err(store)?;
        }
        // Learners who arrive through a deep-linking placement just land in the class.
        let pick = match &v.deep_link {
            Some(req) if role == ClassRole::Teacher => Some(
                super::deep_link::open(&self.db, &v.platform.id, &user, &class, req)
                    .await
                    .map_err(store)?,
            ),
            _ => None,
        };
        Ok(Arrival {
            user,
            class,
            role,
            assignment: launch.assignment_id,
            pick,
        })
    }
}
