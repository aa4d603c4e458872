//! Schools' own sign-in: a school admin points penpal at the school's OpenID Connect provider
//! (its issuer, penpal's client id and secret there, the address domains it serves), and the
//! school's people sign in through it — the authorization-code flow with PKCE (S256), `state`
//! and `nonce` stored hashed and single use, the code exchanged with the client secret, the id
//! token checked as LTI launches are ([`super::lti::id_token`], the provider's keys by `kid`).
//! An identity is linked to an account per school by (issuer, `sub`), as platform accounts
//! are, and a newcomer takes a learner seat (staff join by invitation). The browser leaves
//! with a hand-off code, as from an LMS. The client secret is sealed under the server secret.
//! Routes in [`routes`]; an identity provider to test against in [`simulator`].

pub mod routes;
pub mod simulator;

use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::lti::id_token::{self, Expected};
use super::lti::jwks::PlatformKeys;
use super::lti::launch::{Refusal, linked_account, school_place};
use super::lti::outbound::{Outbound, body};
use super::platform::CourseRole;
use crate::auth::tokens::{hash_token, random_token};
use crate::store::sealed::Sealer;
use crate::store::{Db, StoreError, StoreResult, now_ms};

/// How long a sign-in may take at the provider.
pub const STATE_TTL_MS: i64 = 600_000;
/// The scopes asked for: the identity, an address and a name.
pub const SCOPES: &str = "openid email profile";

/// A school's provider, as its admins see it (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Provider {
    /// The provider's issuer.
    pub issuer: String,
    /// Penpal's client id there.
    pub client_id: String,
    /// How penpal authenticates at the token endpoint (`client_secret_basic` or `_post`).
    pub auth_method: String,
    /// Its authorization endpoint (from discovery).
    pub auth_url: String,
    /// Its token endpoint (from discovery).
    pub token_url: String,
    /// Its key set (from discovery).
    pub jwks_url: String,
    /// Address domains whose people are sent to it from the sign-in page.
    pub domains: Vec<String>,
    /// When it was last set (ms).
    pub updated_at: i64,
}

#[derive(Deserialize)]
struct Row {
    #[serde(flatten)]
    provider: Provider,
    secret_sealed: String,
}

/// What an admin sets.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The issuer (discovery is read from it).
    pub issuer: String,
    /// Penpal's client id.
    pub client_id: String,
    /// Penpal's client secret; none keeps the one set before.
    pub client_secret: Option<String>,
    /// Address domains, lower case.
    pub domains: Vec<String>,
}

/// Why a provider could not be set, or a sign-in did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// The school has set no provider.
    #[error(
        "this school has not set up sign-in with its own accounts: sign in with your penpal password, or ask the school"
    )]
    NotSet,
    /// A new provider needs its secret.
    #[error("give the client secret the provider issued to penpal")]
    NoSecret,
    /// The provider's discovery document is unusable.
    #[error("the provider's OpenID configuration {0}")]
    Config(String),
    /// Another school signs in people of this domain.
    #[error("another school already signs in people with addresses at {0}")]
    DomainTaken(String),
    /// The provider could not be reached.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// The login's state is unknown, used, expired, or not this browser's.
    #[error("this sign-in is unknown, used or expired: start again")]
    State,
    /// The provider said no (the person cancelled, or it refused penpal).
    #[error("the provider did not sign you in: {0}")]
    Declined(String),
    /// The provider's answer failed a check.
    #[error("the provider's answer did not check out: {0}")]
    Refused(String),
    /// The school has no seat for a new learner.
    #[error("{0}")]
    NoSeat(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for SsoError {
    fn from(r: Refusal) -> SsoError {
        match r {
            Refusal::Unreachable(why) => SsoError::Unreachable(why),
            other => SsoError::Refused(other.to_string()),
        }
    }
}

/// The parts of a discovery document penpal reads.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default)]
    response_types_supported: Option<Vec<String>>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// A sign-in that passed every check.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The account.
    pub user: String,
    /// The school it signed in through.
    pub school: String,
    /// The page to go on to.
    pub next: String,
}

#[derive(Deserialize)]
struct StateRow {
    school: String,
    nonce: String,
    verifier: String,
    next: String,
}

/// Schools' sign-in.
#[derive(Clone)]
pub struct Sso {
    /// The database.
    pub db: Db,
    /// Requests to providers (the same rules as to LMS platforms).
    pub outbound: Outbound,
    /// Providers' keys (one cache with LMS platforms' keys).
    pub keys: Arc<PlatformKeys>,
    /// Seals client secrets.
    pub sealer: Arc<Sealer>,
    /// Where people reach penpal (no trailing slash).
    pub public_url: String,
}

/// `next` when it is a path on penpal's own origin, else the Classes page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => {
            n.to_string()
        }
        _ => "/classes".to_string(),
    }
}

/// The PKCE challenge (S256) of `verifier`.
pub fn challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

impl Sso {
    /// Where providers send people back (the redirect URI an admin registers there).
    pub fn redirect_uri(&self) -> String {
        format!("{}/sso/callback", self.public_url)
    }

    /// The school's sign-in link (admins hand it out or put it in their portal).
    pub fn sign_in_url(&self, school: &str) -> String {
        format!("{}/sso/{school}/login", self.public_url)
    }

    /// `school`'s provider, if it set one.
    pub async fn provider(&self, school: &str) -> StoreResult<Option<Provider>> {
        Ok(self.row(school).await?.map(|r| r.provider))
    }

    async fn row(&self, school: &str) -> StoreResult<Option<Row>> {
        self.db
            .one(
                "SELECT * FROM type::record('school_sso', $s)",
                json!({"s": school}),
            )
            .await
    }

    /// Reads and checks the discovery document of `issuer`.
    async fn discover(&self, issuer: &str) -> Result<Discovery, SsoError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        if let Some(why) = self.outbound.refuses(&url) {
            return Err(SsoError::Config(format!("cannot be read: {why}")));
        }
        let resp = self
            .outbound
            .client()
            .get(&url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| SsoError::Unreachable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(SsoError::Config(format!(
                "at {url} answered {}: is the issuer right?",
                resp.status()
            )));
        }
        let raw = body(resp)
            .await
            .map_err(|e| SsoError::Unreachable(e.to_string()))?;
        let d: Discovery = serde_json::from_slice(&raw)
            .map_err(|e| SsoError::Config(format!("is not what OpenID providers publish: {e}")))?;
        // OpenID Connect Discovery: the document speaks for exactly the issuer it was read for.
        if d.issuer != issuer {
            return Err(SsoError::Config(format!(
                "names issuer `{}`, not `{issuer}`",
                d.issuer
            )));
        }
        for (name, v) in [
            ("authorization_endpoint", &d.authorization_endpoint),
            ("token_endpoint", &d.token_endpoint),
            ("jwks_uri", &d.jwks_uri),
        ] {
            if let Some(why) = self.outbound.refuses(v) {
                return Err(SsoError::Config(format!("`{name}`: {why}")));
            }
        }
        let lacks = |list: &Option<Vec<String>>, want: &str| {
            list.as_ref().is_some_and(|l| !l.iter().any(|v| v == want))
        };
        if lacks(&d.id_token_signing_alg_values_supported, "RS256") {
            return Err(SsoError::Config(
                "does not sign id tokens with RS256, which penpal checks".into(),
            ));
        }
        if lacks(&d.response_types_supported, "code") {
            return Err(SsoError::Config(
                "does not offer the authorization-code flow".into(),
            ));
        }
        if lacks(&d.code_challenge_methods_supported, "S256") {
            return Err(SsoError::Config(
                "does not offer PKCE with S256, which penpal uses".into(),
            ));
        }
        Ok(d)
    }

    /// Sets `school`'s provider (discovery read and checked first); what is stored.
    pub async fn configure(&self, school: &str, by: &str, s: &Setup) -> Result<Provider, SsoError> {
        let before = self.row(school).await?;
        let secret = match (&s.client_secret, &before) {
            (Some(secret), _) => self.sealer.seal(school, secret.as_bytes()).map_err(|e| {
                SsoError::Store(StoreError::Db(format!("could not seal the secret: {e}")))
            })?,
            (None, Some(row)) => row.secret_sealed.clone(),
            (None, None) => return Err(SsoError::NoSecret),
        };
        let d = self.discover(&s.issuer).await?;
        let methods = d.token_endpoint_auth_methods_supported.unwrap_or_default();
        let auth_method =
            if methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic") {
                "client_secret_basic"
            } else if methods.iter().any(|m| m == "client_secret_post") {
                "client_secret_post"
            } else {
                return Err(SsoError::Config(
                "offers neither client_secret_basic nor client_secret_post at its token endpoint"
                    .into(),
            ));
            };
        // One transaction: a domain another school holds refuses the whole change.
        let set = self
            .db
            .exec(
                "BEGIN TRANSACTION;
                 DELETE sso_domain WHERE school = $s;
                 FOR $d IN $domains {
                     IF record::exists(type::record('sso_domain', $d)) {
                         THROW 'domain taken: ' + $d;
                     };
                     CREATE type::record('sso_domain', $d) CONTENT { school: $s };
                 };
                 UPSERT type::record('school_sso', $s) CONTENT { issuer: $iss, client_id: $cid, secret_sealed: $secret,
                     auth_method: $method, auth_url: $authz, token_url: $tok, jwks_url: $jwks, domains: $domains,
                     updated_at: $now, updated_by: $by };
                 COMMIT TRANSACTION;",
                json!({"s": school, "domains": s.domains, "iss": s.issuer, "cid": s.client_id,
                       "secret": secret, "method": auth_method, "authz": d.authorization_endpoint,
                       "tok": d.token_endpoint, "jwks": d.jwks_uri, "now": now_ms(), "by": by}),
            )
            .await;
        match set {
            Ok(()) => {}
            Err(StoreError::Db(m) | StoreError::Conflict(m)) if m.contains("domain taken: ") => {
                let domain = m.rsplit("domain taken: ").next().unwrap_or_default();
                return Err(SsoError::DomainTaken(
                    domain
                        .trim_matches(|c: char| c == '\'' || c == '"')
                        .to_string(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.provider(school)
            .await?
            .ok_or_else(|| SsoError::Store(StoreError::Db("the provider vanished".into())))
    }

    /// Removes `school`'s provider; accounts linked through it stay (they sign in with a
    /// password reset, or through a provider set again with the same issuer).
    pub async fn remove(&self, school: &str) -> StoreResult<bool> {
        let gone: Option<Value> = self
            .db
            .one(
                "DELETE sso_domain WHERE school = $s;
                 DELETE type::record('school_sso', $s) RETURN BEFORE",
                json!({"s": school}),
            )
            .await?;
        Ok(gone.is_some())
    }

    /// The school (id and name) whose provider serves the domain of `email`.
    pub async fn school_for(&self, email: &str) -> StoreResult<Option<(String, String)>> {
        let Some((_, domain)) = email.trim().rsplit_once('@').filter(|(_, d)| !d.is_empty()) else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        struct Found {
            school: String,
            name: String,
        }
        let found: Option<Found> = self
            .db
            .one(
                "SELECT school, (type::record('school', school)).name AS name
                 FROM type::record('sso_domain', $d) WHERE record::exists(type::record('school_sso', school))",
                json!({"d": domain.to_ascii_lowercase()}),
            )
            .await?;
        Ok(found.map(|f| (f.school, f.name)))
    }

    /// Starts a sign-in at `school`'s provider: stores a fresh state, nonce and PKCE
    /// verifier; the provider's URL to send the browser to, and the state (which the
    /// browser keeps in a cookie, so only it can finish this sign-in).
    pub async fn start(
        &self,
        school: &str,
        next: Option<&str>,
        login_hint: Option<&str>,
    ) -> Result<(String, String), SsoError> {
        let p = self.provider(school).await?.ok_or(SsoError::NotSet)?;
        let (state, nonce, verifier) = (random_token(), random_token(), random_token());
        self.db
            .exec(
                "CREATE type::record('sso_state', $id) CONTENT { school: $s, nonce: $nonce, verifier: $v, next: $next, expires_at: $exp }",
                json!({"id": hash_token(&state), "s": school, "nonce": nonce, "v": verifier,
                       "next": safe_next(next), "exp": now_ms() + STATE_TTL_MS}),
            )
            .await?;
        let mut url = reqwest::Url::parse(&p.auth_url)
            .map_err(|e| SsoError::Config(format!("has an unusable authorization URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &p.client_id)
                .append_pair("redirect_uri", &self.redirect_uri())
                .append_pair("scope", SCOPES)
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &challenge(&verifier))
                .append_pair("code_challenge_method", "S256");
            if let Some(h) = login_hint.filter(|h| !h.is_empty() && h.len() <= 254) {
                q.append_pair("login_hint", h);
            }
        }
        metrics::counter!("penpal_sso_starts_total").increment(1);
        Ok((url.to_string(), state))
    }

    /// Finishes the sign-in `state` came back with: the code exchanged, the id token checked,
    /// the account linked and seated. Nothing but the spent state is stored unless every
    /// check passes.
    pub async fn finish(&self, state: &str, code: &str) -> Result<SignedIn, SsoError> {
        // Spent as it is read: a replayed callback finds nothing.
        let row: StateRow = self
            .db
            .one(
                "DELETE type::record('sso_state', $id) WHERE expires_at > $now RETURN BEFORE",
                json!({"id": hash_token(state), "now": now_ms()}),
            )
            .await?
            .ok_or(SsoError::State)?;
        let p = self.row(&row.school).await?.ok_or(SsoError::NotSet)?;
        let secret = self
            .sealer
            .open(&row.school, &p.secret_sealed)
            .map_err(|_| {
                SsoError::Store(StoreError::Db(
                    "the client secret does not open with this server's secret: was PENPAL_JWT_SECRET changed?"
                        .into(),
                ))
            })?;
        let secret = String::from_utf8_lossy(&secret).into_owned();
        let p = p.provider;
        let token = self.exchange(&p, &secret, code, &row.verifier).await?;
        let claims = id_token::check(
            &self.keys,
            &token,
            &Expected {
                issuer: &p.issuer,
                client_id: &p.client_id,
                jwks_url: &p.jwks_url,
                nonce: &row.nonce,
            },
        )
        .await?;
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| SsoError::Refused("the id token names no usable `sub`".into()))?;
        // An address the provider has not verified could be anyone's: it is not used.
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .filter(|_| claims.get("email_verified").and_then(Value::as_bool) == Some(true))
            .filter(|e| e.contains('@') && e.len() <= 254);
        let str_claim = |n: &str| {
            claims
                .get(n)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let name = str_claim("name")
            .map(str::to_string)
            .or_else(|| {
                let parts: Vec<&str> = [str_claim("given_name"), str_claim("family_name")]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
            .or_else(|| str_claim("preferred_username").map(str::to_string));
        let user = linked_account(
            &self.db,
            &row.school,
            &p.issuer,
            sub,
            email,
            name.as_deref(),
        )
        .await
        .map_err(|e| SsoError::Store(StoreError::Db(e.to_string())))?;
        school_place(&self.db, &row.school, &user, CourseRole::Learner)
            .await?
            .map_err(|r| SsoError::NoSeat(r.to_string()))?;
        metrics::counter!("penpal_sso_sign_ins_total").increment(1);
        Ok(SignedIn {
            user,
            school: row.school,
            next: row.next,
        })
    }

    /// Spends `state` after the provider declined the sign-in.
    pub async fn finish_declined(&self, state: &str) -> StoreResult<()> {
        self.db
            .exec(
                "DELETE type::record('sso_state', $id)",
                json!({"id": hash_token(state)}),
            )
            .await
    }

    /// Exchanges `code` at the provider's token endpoint; the id token.
    async fn exchange(
        &self,
        p: &Provider,
        secret: &str,
        code: &str,
        verifier: &str,
    ) -> Result<String, SsoError> {
        if let Some(why) = self.outbound.refuses(&p.token_url) {
            return Err(SsoError::Unreachable(why));
        }
        let redirect = self.redirect_uri();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier),
        ];
        let mut req = self.outbound.client().post(&p.token_url);
        if p.auth_method == "client_secret_post" {
            form.push(("client_id", &p.client_id));
            form.push(("client_secret", secret));
        } else {
            // RFC 6749 §2.3.1: each part form-encoded before the Basic encoding.
            let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                super::lti::services::form_encode(&p.client_id),
                super::lti::services::form_encode(secret)
            ));
            req = req.header("authorization", format!("Basic {basic}"));
        }
        let resp = req
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(super::lti::services::form(&form))
            .send()
            .await
            .map_err(|e| SsoError::Unreachable(e.to_string()))?;
        let status = resp.status();
        let raw = body(resp)
            .await
            .map_err(|e| SsoError::Unreachable(e.to_string()))?;
        let answer: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        if status.is_server_error() {
            return Err(SsoError::Unreachable(format!(
                "its token endpoint answered {status}"
            )));
        }
        if !status.is_success() {
            let why = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            return Err(SsoError::Refused(format!(
                "the token endpoint refused the code ({status}: {})",
                why.chars().take(100).collect::<String>()
            )));
        }
        answer
            .get("id_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| SsoError::Refused("the token endpoint gave no id token".into()))
    }
}
