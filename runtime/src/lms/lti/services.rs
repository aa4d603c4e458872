//! LTI Advantage services' plumbing and the roster: OAuth 2 access tokens by client
//! credentials with a client assertion the host signs with the tool key (RFC 7523; cached per
//! platform and scopes until shortly before they expire), and **Names and Role Provisioning
//! Services** roster sync — the course's members, page by page (`Link: …; rel="next"`), read by
//! the platform's plugin, linked or provisioned like launches and put in the class; members the
//! platform marks inactive leave the class.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use utoipa::ToSchema;

use super::keys::ToolKeys;
use super::outbound::{Outbound, body};
use super::platforms::{self, Platform};
use crate::lms::classes::{self, ClassRole};
use crate::lms::platform::LmsClient;
use crate::lms::schools::SchoolRole;
use crate::store::{Db, StoreError, now_ms};

/// The roster scope.
pub const ROSTER_SCOPE: &str =
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly";
/// Pages read at most in one sync (a runaway `next` link stops here).
const MAX_PAGES: usize = 100;

/// Access tokens from platforms' token endpoints.
pub struct Tokens {
    keys: Arc<ToolKeys>,
    outbound: Outbound,
    cache: Mutex<HashMap<(String, String), (String, i64)>>,
}

impl Tokens {
    /// Tokens asked for with assertions signed by `keys`, through `outbound`.
    pub fn new(keys: Arc<ToolKeys>, outbound: Outbound) -> Tokens {
        Tokens {
            keys,
            outbound,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `scopes` at platform `p`.
    pub async fn get(&self, p: &Platform, scopes: &str) -> anyhow::Result<String> {
        let key = (p.id.clone(), scopes.to_string());
        if let Some((t, until)) = self.cache.lock().await.get(&key)
            && *until > now_ms() + 30_000
        {
            return Ok(t.clone());
        }
        if let Some(why) = self.outbound.refuses(&p.token_url) {
            anyhow::bail!("the token endpoint: {why}");
        }
        let now = now_ms() / 1000;
        let assertion = self.keys.signing().await?.sign(&json!({
            "iss": p.client_id, "sub": p.client_id, "aud": p.token_url,
            "iat": now, "exp": now + 300, "jti": crate::store::new_id(),
        }))?;
        let resp = self
            .outbound
            .client()
            .post(&p.token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
                ("scope", scopes),
            ]))
            .send()
            .await?;
        let status = resp.status();
        let raw = body(resp).await?;
        if !status.is_success() {
            anyhow::bail!("the token endpoint answered {status}");
        }
        let v: Value = serde_json::from_slice(&raw)?;
        let token = v["access_token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("the token endpoint gave no access_token"))?
            .to_string();
        let ttl = v["expires_in"].as_i64().unwrap_or(3600);
        self.cache
            .lock()
            .await
            .insert(key, (token.clone(), now_ms() + ttl * 1000));
        Ok(token)
    }

    /// Drops a token the platform no longer takes.
    pub async fn forget(&self, p: &Platform, scopes: &str) {
        self.cache
            .lock()
            .await
            .remove(&(p.id.clone(), scopes.to_string()));
    }
}

/// `s` form-encoded (`application/x-www-form-urlencoded`).
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A form body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `rel="next"` target of a `Link` header, if any.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| {
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            part.get(start..end).map(str::to_string)
        })
}

/// What a roster sync did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Synced {
    /// Members read from the platform.
    pub read: usize,
    /// Put in the class (new to it).
    pub added: usize,
    /// Taken out (inactive on the platform).
    pub removed: usize,
    /// Left out: the school had no seat for them.
    pub no_seat: usize,
}

/// Why a sync could not run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The class did not come from a course with a roster service.
    #[error(
        "this class did not come from an LMS course with a roster service: launch penpal from the course first"
    )]
    NotLinked,
    /// The platform failed.
    #[error("the LMS could not be read: {0}")]
    Platform(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Syncs class `class` (of `school`) with its course's roster.
pub async fn sync(
    db: &Db,
    tokens: &Tokens,
    outbound: &Outbound,
    lms: &LmsClient,
    class: &str,
    school: &str,
) -> Result<Synced, SyncError> {
    #[derive(serde::Deserialize)]
    struct Ctx {
        platform: String,
        memberships_url: String,
    }
    let ctx: Option<Ctx> = db
        .one(
            "SELECT platform, memberships_url FROM lti_context WHERE class = $c AND memberships_url != NONE LIMIT 1",
            json!({"c": class}),
        )
        .await?;
    let ctx = ctx.ok_or(SyncError::NotLinked)?;
    let p = platforms::get(db, &ctx.platform)
        .await?
        .ok_or(SyncError::NotLinked)?;
    let fail = |e: &dyn std::fmt::Display| SyncError::Platform(e.to_string());
    let token = tokens.get(&p, ROSTER_SCOPE).await.map_err(|e| fail(&e))?;
    let mut members = Vec::new();
    let mut next = Some(ctx.memberships_url.clone());
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        if pages > MAX_PAGES {
            break;
        }
        if let Some(why) = outbound.refuses(&url) {
            return Err(SyncError::Platform(why));
        }
        let resp = outbound
            .client()
            .get(&url)
            .bearer_auth(&token)
            .header(
                "accept",
                "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
            )
            .send()
            .await
            .map_err(|e| fail(&e))?;
        if resp.status().as_u16() == 401 {
            tokens.forget(&p, ROSTER_SCOPE).await;
        }
        if !resp.status().is_success() {
            return Err(SyncError::Platform(format!(
                "the roster answered {}",
                resp.status()
            )));
        }
        next = next_link(resp.headers());
        let raw = body(resp).await.map_err(|e| fail(&e))?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        members.extend(
            lms.read_roster(&p.plugin, &text)
                .await
                .map_err(|e| fail(&e))?,
        );
    }
    let mut out = Synced {
        read: members.len(),
        ..Synced::default()
    };
    for m in members {
        let linked: Option<String> = db
            .one(
                "SELECT VALUE user FROM type::record('lti_user', [$school, $iss, $sub])",
                json!({"school": school, "iss": p.issuer, "sub": m.user_id}),
            )
            .await?;
        if !m.active {
            if let Some(user) = linked
                && classes::role_in(db, class, &user).await?.is_some()
            {
                classes::remove(db, class, &user).await?;
                out.removed += 1;
            }
            continue;
        }
        let user = super::launch::linked_account(
            db,
            school,
            &p.issuer,
            &m.user_id,
            m.email.as_deref(),
            m.name.as_deref(),
        )
        .await
        .map_err(|e| fail(&e))?;
        let Ok(school_role) = super::launch::school_place(db, school, &user, m.role).await? else {
            out.no_seat += 1;
            continue;
        };
        if classes::role_in(db, class, &user).await?.is_none() {
            let role = if school_role == SchoolRole::Learner {
                ClassRole::Learner
            } else {
                ClassRole::Teacher
            };
            classes::add(db, class, school, &user, role).await?;
            out.added += 1;
        }
    }
    metrics::counter!("penpal_lti_roster_syncs_total").increment(1);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            reqwest::header::HeaderValue::from_static(
                "<https://lms.example/m?p=1>; rel=\"prev\", <https://lms.example/m?p=3>; rel=\"next\"",
            ),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://lms.example/m?p=3"));
        assert_eq!(next_link(&reqwest::header::HeaderMap::new()), None);
    }
}
