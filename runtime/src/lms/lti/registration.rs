//! LTI Dynamic Registration (1EdTech LTI DR 1.0): a school admin makes a registration link in
//! penpal and pastes it into the LMS; the LMS opens it with its OpenID configuration URL and a
//! registration token; penpal reads the configuration, checks it (the issuer on the host the
//! configuration came from, public HTTPS endpoints, RS256), registers itself at the platform's
//! registration endpoint and stores the platform for the link's school — as a registration by
//! hand would. The link is single use and expires; penpal's keys never leave the host (the
//! platform reads them from the JWKS URL).

use serde::Deserialize;
use serde_json::{Value, json};

use super::outbound::{Outbound, body};
use super::platforms::{self, NewPlatform, Platform};
use super::{DEEP_LINKING, RESOURCE_LINK};
use crate::auth::tokens::{hash_token, random_token};
use crate::lms::platform::LmsClient;
use crate::store::{Db, StoreError, StoreResult, now_ms};

/// How long a registration link works.
pub const LINK_TTL_MS: i64 = 7 * 24 * 3_600_000;

/// The services penpal asks for: grades (line items, scores) and rosters.
const SCOPES: &[&str] = &[
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
];

const TOOL_CONFIGURATION: &str = "https://purl.imsglobal.org/spec/lti-tool-configuration";

/// A new registration link for `school` (the LMS plugin fixed when `plugin` is given, else
/// chosen from the platform's product family); its token and expiry (ms).
pub async fn new_link(
    db: &Db,
    school: &str,
    by: &str,
    plugin: Option<&str>,
) -> StoreResult<(String, i64)> {
    let token = random_token();
    let now = now_ms();
    let expires_at = now + LINK_TTL_MS;
    db.exec(
        "CREATE type::record('lti_registration', $id) CONTENT { school: $school, plugin: $plugin ?? NONE,
             created_by: $by, created_at: $now, expires_at: $exp }",
        json!({"id": hash_token(&token), "school": school, "plugin": plugin, "by": by,
               "now": now, "exp": expires_at}),
    )
    .await?;
    Ok((token, expires_at))
}

/// Why a registration did not happen; each is said on the page the LMS shows.
#[derive(Debug, thiserror::Error)]
pub enum RegError {
    /// The link is unknown, used or expired.
    #[error(
        "this registration link is unknown, used or expired: a school admin makes a new one in Penpal (school settings, LMS platforms)"
    )]
    Link,
    /// The LMS opened the link without its configuration.
    #[error(
        "the LMS opened this link without `openid_configuration`: paste the link into the LMS's LTI Dynamic Registration (\"tool URL\") field"
    )]
    NoConfiguration,
    /// The platform's configuration is unusable.
    #[error("the LMS's OpenID configuration {0}")]
    Config(String),
    /// No installed LMS plugin speaks to this platform.
    #[error(
        "no LMS plugin for `{0}` is installed in Penpal: register the platform by hand and choose a plugin"
    )]
    Plugin(String),
    /// The platform could not be reached.
    #[error("the LMS could not be reached: {0}")]
    Unreachable(String),
    /// The platform refused the registration.
    #[error("the LMS refused the registration: {0}")]
    Refused(String),
    /// The issuer and client id are registered already.
    #[error("this LMS (its issuer and Penpal's client id there) is registered already")]
    Taken,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Deserialize)]
struct Link {
    school: String,
    plugin: Option<String>,
}

/// What LTI DR reads of a platform's OpenID configuration.
#[derive(Debug, Deserialize)]
struct Configuration {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    registration_endpoint: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default)]
    scopes_supported: Option<Vec<String>>,
    #[serde(rename = "https://purl.imsglobal.org/spec/lti-platform-configuration")]
    platform: PlatformConfiguration,
}

#[derive(Debug, Deserialize)]
struct PlatformConfiguration {
    product_family_code: String,
    #[serde(default)]
    messages_supported: Vec<Value>,
}

/// Runs registrations.
pub struct Registrar<'a> {
    /// The database.
    pub db: &'a Db,
    /// Requests to the platform.
    pub outbound: &'a Outbound,
    /// LMS plugins, to choose one.
    pub lms: &'a LmsClient,
    /// Penpal's public URL.
    pub public_url: &'a str,
}

impl Registrar<'_> {
    /// Registers penpal at the platform whose configuration is at `config_url`, using link
    /// `token`, and stores the platform for the link's school.
    pub async fn register(
        &self,
        token: &str,
        config_url: Option<&str>,
        registration_token: Option<&str>,
    ) -> Result<Platform, RegError> {
        let id = hash_token(token);
        let link: Link = self
            .db
            .one(
                "SELECT school, plugin FROM type::record('lti_registration', $id) WHERE expires_at > $now",
                json!({"id": id, "now": now_ms()}),
            )
            .await?
            .ok_or(RegError::Link)?;
        let config_url = config_url.ok_or(RegError::NoConfiguration)?;
        if let Some(why) = self.outbound.refuses(config_url) {
            return Err(RegError::Config(format!("URL cannot be read: {why}")));
        }
        let config = self.configuration(config_url).await?;
        let (plugin, lms_name) = self.plugin(link.plugin, &config).await?;
        let (client_id, deployment) = self.post(&config, registration_token).await?;
        // Spent only now: a platform that was down leaves the link usable for another try.
        let spent: Option<Value> = self
            .db
            .one(
                "DELETE type::record('lti_registration', $id) WHERE expires_at > $now RETURN BEFORE",
                json!({"id": id, "now": now_ms()}),
            )
            .await?;
        if spent.is_none() {
            return Err(RegError::Link);
        }
        let new = NewPlatform {
            name: format!("{lms_name} ({})", host(&config.issuer).unwrap_or_default()),
            plugin,
            issuer: config.issuer,
            client_id,
            deployment_ids: deployment.into_iter().collect(),
            auth_url: config.authorization_endpoint,
            token_url: config.token_endpoint,
            jwks_url: config.jwks_uri,
        };
        let id = match platforms::create(self.db, &link.school, &new).await {
            Ok(id) => id,
            Err(StoreError::Conflict(_)) => return Err(RegError::Taken),
            Err(e) => return Err(e.into()),
        };
        platforms::get(self.db, &id)
            .await?
            .ok_or_else(|| RegError::Store(StoreError::Db("the platform vanished".into())))
    }

    /// Reads and checks the configuration at `url`.
    async fn configuration(&self, url: &str) -> Result<Configuration, RegError> {
        let resp = self
            .outbound
            .client()
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| RegError::Unreachable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(RegError::Unreachable(format!(
                "its configuration answered {}",
                resp.status()
            )));
        }
        let raw = body(resp)
            .await
            .map_err(|e| RegError::Unreachable(e.to_string()))?;
        let config: Configuration = serde_json::from_slice(&raw)
            .map_err(|e| RegError::Config(format!("is not what LTI 1.3 platforms publish: {e}")))?;
        // The specification's rule: a configuration speaks only for an issuer on its own host.
        if host(&config.issuer).is_none() || host(&config.issuer) != host(url) {
            return Err(RegError::Config(format!(
                "names issuer `{}`, which is not on the host it was read from",
                config.issuer
            )));
        }
        for (name, v) in [
            ("authorization_endpoint", &config.authorization_endpoint),
            ("token_endpoint", &config.token_endpoint),
            ("jwks_uri", &config.jwks_uri),
            ("registration_endpoint", &config.registration_endpoint),
        ] {
            if let Some(why) = self.outbound.refuses(v) {
                return Err(RegError::Config(format!("`{name}`: {why}")));
            }
        }
        if let Some(algs) = &config.id_token_signing_alg_values_supported
            && !algs.iter().any(|a| a == "RS256")
        {
            return Err(RegError::Config(
                "does not sign id tokens with RS256, which LTI 1.3 requires".into(),
            ));
        }
        Ok(config)
    }

    /// The LMS plugin for the platform and the name of the LMS it speaks to: the link's, else
    /// the installed one whose platform id begins the product family code (`moodle`,
    /// `canvas`, `BlackboardLearn`).
    async fn plugin(
        &self,
        fixed: Option<String>,
        config: &Configuration,
    ) -> Result<(String, String), RegError> {
        if let Some(p) = fixed {
            let name = match self.lms.platform(&p).await {
                Ok(info) => info.name,
                Err(_) => p.clone(),
            };
            return Ok((p, name));
        }
        let family = config.platform.product_family_code.to_ascii_lowercase();
        for name in self.lms.names() {
            if let Ok(info) = self.lms.platform(&name).await
                && !info.id.is_empty()
                && family.starts_with(&info.id.to_ascii_lowercase())
            {
                return Ok((name, info.name));
            }
        }
        Err(RegError::Plugin(
            config.platform.product_family_code.clone(),
        ))
    }

    /// Posts penpal's registration; the client id and deployment the platform gave.
    async fn post(
        &self,
        config: &Configuration,
        registration_token: Option<&str>,
    ) -> Result<(String, Option<String>), RegError> {
        let base = self.public_url;
        let domain = host(base).unwrap_or_default();
        let scope: Vec<&str> = SCOPES
            .iter()
            .copied()
            .filter(|s| {
                config
                    .scopes_supported
                    .as_ref()
                    .is_none_or(|all| all.iter().any(|a| a == s))
            })
            .collect();
        let launch = format!("{base}/lti/launch");
        let supports = |t: &str| {
            config.platform.messages_supported.is_empty()
                || config
                    .platform
                    .messages_supported
                    .iter()
                    .any(|m| m["type"] == t)
        };
        let mut messages =
            vec![json!({"type": RESOURCE_LINK, "target_link_uri": launch, "label": "Penpal"})];
        if supports(DEEP_LINKING) {
            messages.push(json!({"type": DEEP_LINKING, "target_link_uri": launch,
                "label": "Penpal assignment"}));
        }
        let registration = json!({
            "application_type": "web",
            "response_types": ["id_token"],
            "grant_types": ["implicit", "client_credentials"],
            "initiate_login_uri": format!("{base}/lti/login"),
            "redirect_uris": [launch],
            "client_name": "Penpal",
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "logo_uri": format!("{base}/assets/favicon.svg"),
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": scope.join(" "),
            TOOL_CONFIGURATION: {
                "domain": domain,
                "description": "Conversation practice with an AI language tutor",
                "target_link_uri": launch,
                "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
                "messages": messages,
            },
        });
        let mut req = self
            .outbound
            .client()
            .post(&config.registration_endpoint)
            .json(&registration);
        if let Some(t) = registration_token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| RegError::Unreachable(e.to_string()))?;
        let status = resp.status();
        let raw = body(resp)
            .await
            .map_err(|e| RegError::Unreachable(e.to_string()))?;
        let answer: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        if !status.is_success() {
            let why = answer["error_description"]
                .as_str()
                .or(answer["error"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&raw).into_owned());
            return Err(RegError::Refused(format!(
                "{status}: {}",
                why.chars().take(200).collect::<String>()
            )));
        }
        let client_id = answer["client_id"]
            .as_str()
            .filter(|c| !c.is_empty() && c.len() <= 200)
            .ok_or_else(|| RegError::Refused("its answer gives no client id".into()))?;
        let deployment = answer[TOOL_CONFIGURATION]["deployment_id"]
            .as_str()
            .filter(|d| !d.is_empty() && d.len() <= 200)
            .map(str::to_string);
        Ok((client_id.to_string(), deployment))
    }
}

/// The host of `url`, lower-cased.
fn host(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_needs_the_lti_platform_part() {
        let without = json!({"issuer": "https://lms.example", "authorization_endpoint": "https://lms.example/a",
            "token_endpoint": "https://lms.example/t", "jwks_uri": "https://lms.example/k",
            "registration_endpoint": "https://lms.example/r"});
        assert!(serde_json::from_value::<Configuration>(without.clone()).is_err());
        let mut with = without;
        with["https://purl.imsglobal.org/spec/lti-platform-configuration"] =
            json!({"product_family_code": "moodle"});
        let c: Configuration = serde_json::from_value(with).unwrap();
        assert_eq!(c.platform.product_family_code, "moodle");
    }
}
