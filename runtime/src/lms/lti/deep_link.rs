//! Deep Linking 2.0: a teacher who comes from the LMS to add content picks assignments of the
//! course's class, and penpal answers the platform with an `LtiDeepLinkingResponse` signed
//! with the tool key — each assignment an LTI resource link (with a gradebook line item) whose
//! launches open it. A deep-linking launch leaves a short-lived pick, usable once and only by
//! the teacher who launched; the response carries the platform's `data` back unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::keys::ToolKeys;
use super::platforms;
use crate::auth::tokens::random_token;
use crate::lms::assignments;
use crate::lms::platform::{AssignmentLink, LmsClient};
use crate::lms::rubric::MAX_SCORE;
use crate::store::{Db, StoreResult, now_ms};

/// How long a teacher has to pick.
pub const PICK_TTL_MS: i64 = 3_600_000;
/// The most items one response places.
pub const MAX_ITEMS: usize = 20;

/// What a deep-linking launch asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Where the response goes.
    pub return_url: String,
    /// The platform's opaque `data`, echoed.
    pub data: Option<Value>,
    /// Whether several items may come back.
    pub accept_multiple: bool,
    /// The deployment launched from.
    pub deployment_id: String,
}

impl Request {
    /// The request in verified `claims`, when they carry deep-linking settings.
    pub fn from_claims(claims: &Value) -> Option<Request> {
        let settings =
            claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings")?;
        Some(Request {
            return_url: settings.get("deep_link_return_url")?.as_str()?.to_string(),
            data: settings.get("data").cloned(),
            // The specification's default is true.
            accept_multiple: settings
                .get("accept_multiple")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            deployment_id: claims
                .get("https://purl.imsglobal.org/spec/lti/claim/deployment_id")?
                .as_str()?
                .to_string(),
        })
    }
}

/// A teacher's pending pick.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Pick {
    /// Its id.
    pub id: String,
    /// The course's class, whose assignments can be placed.
    pub class: String,
    /// Whether several assignments may be placed at once.
    pub accept_multiple: bool,
    /// When it stops working (ms).
    pub expires_at: i64,
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub(crate) platform: String,
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub(crate) return_url: String,
    /// The platform's `data`, as the JSON text it came as.
    #[serde(skip_serializing, default)]
    #[schema(ignore)]
    pub(crate) data: Option<String>,
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub(crate) deployment_id: String,
}

/// Stores a pick for `user` answering `req` from `platform` for `class`; its id.
pub async fn open(
    db: &Db,
    platform: &str,
    user: &str,
    class: &str,
    req: &Request,
) -> StoreResult<String> {
    let id = random_token();
    let now = now_ms();
    db.exec(
        "CREATE type::record('lti_deep_link', $id) CONTENT { platform: $p, user: $u, class: $c, return_url: $r,
             data: $data ?? NONE, accept_multiple: $multi, deployment_id: $d, expires_at: $exp }",
        json!({"id": id, "p": platform, "u": user, "c": class, "r": req.return_url,
               "data": req.data.as_ref().map(Value::to_string),
               "multi": req.accept_multiple, "d": req.deployment_id, "exp": now + PICK_TTL_MS}),
    )
    .await?;
    Ok(id)
}

/// `user`'s live pick `id`.
pub async fn get(db: &Db, id: &str, user: &str) -> StoreResult<Option<Pick>> {
    db.one(
        "SELECT *, record::id(id) AS id FROM type::record('lti_deep_link', $id) WHERE user = $u AND expires_at > $now",
        json!({"id": id, "u": user, "now": now_ms()}),
    )
    .await
}

/// Spends `user`'s pick `id`: whether it was still there.
pub async fn spend(db: &Db, id: &str, user: &str) -> StoreResult<bool> {
    let gone: Option<Value> = db
        .one(
            "DELETE type::record('lti_deep_link', $id) WHERE user = $u AND expires_at > $now RETURN BEFORE",
            json!({"id": id, "u": user, "now": now_ms()}),
        )
        .await?;
    Ok(gone.is_some())
}

/// The form the browser posts back to the platform.
#[derive(Debug, Serialize, ToSchema)]
pub struct Response {
    /// Where to post it (the platform's deep-link return URL).
    pub return_url: String,
    /// The signed `LtiDeepLinkingResponse`, posted as the form field `JWT`.
    pub jwt: String,
    /// A penpal page that posts it for the browser (two minutes, once): the web app goes
    /// there, as its own pages may only post forms to penpal.
    pub continue_url: String,
}

/// How long the page posting an answer works.
pub const RETURN_TTL_MS: i64 = 120_000;

/// Keeps `jwt` for the page that posts it to `return_url`; that page's token.
pub async fn keep_answer(db: &Db, return_url: &str, jwt: &str) -> StoreResult<String> {
    let token = random_token();
    let now = now_ms();
    db.exec(
        "CREATE type::record('lti_return', $id) CONTENT { return_url: $r, jwt: $jwt, expires_at: $exp }",
        json!({"id": crate::auth::tokens::hash_token(&token), "r": return_url, "jwt": jwt,
               "exp": now + RETURN_TTL_MS}),
    )
    .await?;
    Ok(token)
}

/// The answer kept under `token` (return URL, JWT), taken once.
pub async fn take_answer(db: &Db, token: &str) -> StoreResult<Option<(String, String)>> {
    #[derive(Deserialize)]
    struct Row {
        return_url: String,
        jwt: String,
    }
    let row: Option<Row> = db
        .one(
            "DELETE type::record('lti_return', $id) WHERE expires_at > $now RETURN BEFORE",
            json!({"id": crate::auth::tokens::hash_token(token), "now": now_ms()}),
        )
        .await?;
    Ok(row.map(|r| (r.return_url, r.jwt)))
}

/// The signed response placing `chosen` (assignments of the pick's class, checked by the
/// caller) in the course.
pub async fn respond(
    db: &Db,
    keys: &ToolKeys,
    lms: &LmsClient,
    public_url: &str,
    pick: &Pick,
    chosen: &[assignments::Assignment],
) -> anyhow::Result<Response> {
    let platform = platforms::get(db, &pick.platform)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the platform was removed"))?;
    let mut items = Vec::with_capacity(chosen.len());
    for a in chosen {
        let link = AssignmentLink {
            assignment_id: a.id.clone(),
            title: a.title.clone(),
            url: format!("{public_url}/lti/launch"),
            score_maximum: f64::from(MAX_SCORE),
        };
        let item = lms.deep_link_item(&platform.plugin, &link).await?;
        items.push(serde_json::from_str::<Value>(&item)?);
    }
    let now = now_ms() / 1000;
    let msg = match items.len() {
        0 => "No assignment was added".to_string(),
        1 => "1 Penpal assignment added".to_string(),
        n => format!("{n} Penpal assignments added"),
    };
    let mut claims = json!({
        "iss": platform.client_id,
        "aud": platform.issuer,
        "iat": now,
        "exp": now + 300,
        "nonce": random_token(),
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": pick.deployment_id,
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiDeepLinkingResponse",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti-dl/claim/content_items": items,
        "https://purl.imsglobal.org/spec/lti-dl/claim/msg": msg,
    });
    if let Some(data) = &pick.data {
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] = serde_json::from_str(data)?;
    }
    let jwt = keys.signing().await?.sign(&claims)?;
    let token = keep_answer(db, &pick.return_url, &jwt).await?;
    Ok(Response {
        return_url: pick.return_url.clone(),
        jwt,
        continue_url: format!("{public_url}/lti/return/{token}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_the_settings_and_defaults_to_several_items() {
        let claims = json!({
            "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "d1",
            "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": {
                "deep_link_return_url": "https://lms.example/dl", "data": {"k": 1}}});
        let r = Request::from_claims(&claims).unwrap();
        assert_eq!(r.return_url, "https://lms.example/dl");
        assert_eq!(r.data, Some(json!({"k": 1})));
        assert!(r.accept_multiple);
        assert_eq!(r.deployment_id, "d1");
        assert!(Request::from_claims(&json!({})).is_none());
    }
}
