//! The devices an account signs in from, so that a sign-in from a new one sends the owner a
//! security notice. A browser is known by a long-lived random cookie (`penpal_device`, set at
//! its first sign-in or sign-up, readable only by the server); an API client, which keeps no
//! cookies, by its `User-Agent`. Only a hash of either is stored.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use serde_json::json;

use super::AuthState;
use super::tokens::{hash_token, random_token};
use crate::http::ClientIp;
use crate::store::outbox::{Category, Notice};
use crate::store::{Batch, StoreResult, now_ms};

/// The cookie naming a browser.
pub const DEVICE_COOKIE: &str = "penpal_device";
/// How long a browser stays known without signing in (400 days, browsers' longest).
const DEVICE_COOKIE_SECS: u64 = 400 * 86_400;

/// The device a request comes from.
#[derive(Debug, Clone)]
pub struct Device {
    /// The browser's cookie, if it sent one.
    cookie: Option<String>,
    /// Its `User-Agent`, as sent.
    agent: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Device::from_headers(&parts.headers))
    }
}

impl Device {
    /// The device named by `headers`.
    pub fn from_headers(headers: &HeaderMap) -> Device {
        Device {
            cookie: super::web::cookie(headers, DEVICE_COOKIE)
                .filter(|c| (16..=128).contains(&c.len()))
                .map(str::to_string),
            agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .chars()
                .take(512)
                .collect(),
        }
    }

    /// A browser without the cookie gets one, to be set on the response.
    pub fn with_cookie(mut self) -> (Device, Option<String>) {
        if self.cookie.is_some() {
            return (self, None);
        }
        let id = random_token();
        self.cookie = Some(id.clone());
        (self, Some(id))
    }

    /// The stored key: a hash of the cookie, or of the `User-Agent` without one.
    fn key(&self) -> String {
        match &self.cookie {
            Some(c) => hash_token(&format!("cookie:{c}")),
            None => hash_token(&format!("agent:{}", self.agent)),
        }
    }

    /// The device in a few words for people: browser and system (`Firefox on Linux`).
    pub fn describe(&self) -> String {
        let a = self.agent.as_str();
        let browser = [
            ("Edg/", "Edge"),
            ("OPR/", "Opera"),
            ("Firefox/", "Firefox"),
            ("Chrome/", "Chrome"),
            ("Safari/", "Safari"),
        ]
        .iter()
        .find(|(mark, _)| a.contains(mark))
        .map(|(_, name)| *name);
        let system = [
            ("Android", "Android"),
            ("iPhone", "iOS"),
            ("iPad", "iPadOS"),
            ("Windows", "Windows"),
            ("Mac OS X", "macOS"),
            ("CrOS", "ChromeOS"),
            ("Linux", "Linux"),
        ]
        .iter()
        .find(|(mark, _)| a.contains(mark))
        .map(|(_, name)| *name);
        match (browser, system) {
            (Some(b), Some(s)) => format!("{b} on {s}"),
            (Some(b), None) => b.to_string(),
            _ if a.trim().is_empty() => "an unnamed app".to_string(),
            // Whatever it says, without anything that could start a line of its own.
            _ => a.chars().filter(|c| !c.is_control()).take(80).collect(),
        }
    }
}

/// The `Set-Cookie` value that names this browser from now on.
pub fn cookie_header(id: &str, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{DEVICE_COOKIE}={id}; Path=/v1/auth; Max-Age={DEVICE_COOKIE_SECS}; HttpOnly; SameSite=Lax{secure}"
    ))
    .ok()
}

/// Adds `device` to `user`'s known devices in `batch` (at sign-up: no notice).
pub fn remember(batch: &mut Batch, user: &str, device: &Device, now: i64) {
    batch.push(
        "UPSERT type::record('known_device', [$dev_user, $dev_key]) SET user = $dev_user, first_seen = first_seen ?? $dev_now, last_seen = $dev_now;",
        [
            ("dev_user".to_string(), json!(user)),
            ("dev_key".to_string(), json!(device.key())),
            ("dev_now".to_string(), json!(now)),
        ],
    );
}

/// Records a sign-in of `user` (`email`, addressed as `name`, writing in `lang`) from
/// `device` at `client`; a device the account never used before (when it has used others)
/// gets the owner a security notice, in the same transaction.
#[allow(clippy::too_many_arguments)] // the notice's parts, each from a different source
pub async fn signed_in(
    app: &AuthState,
    user: &str,
    email: &str,
    name: &str,
    lang: &str,
    device: &Device,
    client: ClientIp,
) -> StoreResult<()> {
    let now = now_ms();
    #[derive(serde::Deserialize)]
    struct Known {
        this: bool,
        any: bool,
    }
    let known: Option<Known> = app
        .db
        .one(
            "RETURN { this: record::exists(type::record('known_device', [$u, $k])), any: array::len((SELECT VALUE id FROM known_device WHERE user = $u LIMIT 1)) > 0 }",
            json!({"u": user, "k": device.key()}),
        )
        .await?;
    let mut batch = Batch::default();
    remember(&mut batch, user, device, now);
    if let Some(Known {
        this: false,
        any: true,
    }) = known
    {
        let when = crate::store::utc_minute(now);
        batch.notify(
            &Notice {
                template: "new_sign_in",
                category: Category::Security,
                user: Some(user.to_string()),
                to: email.to_string(),
                lang: lang.to_string(),
                vars: json!({
                    "name": name,
                    "when": when,
                    "device": device.describe(),
                    "ip": client.0.to_string(),
                    "link": app.settings.link("/forgot-password"),
                }),
            },
            &app.routing,
            "ns",
        );
        tracing::info!(user = %user, "sign-in from a new device");
    }
    batch.commit(&app.db).await?;
    app.outbox.notify_one();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(agent: &str) -> Device {
        Device {
            cookie: None,
            agent: agent.into(),
        }
    }

    #[test]
    fn devices_are_described_in_a_few_words() {
        assert_eq!(
            device("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
                .describe(),
            "Firefox on Linux"
        );
        assert_eq!(
            device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1").describe(),
            "Safari on iOS"
        );
        assert_eq!(
            device("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0").describe(),
            "Edge on Windows"
        );
        assert_eq!(device("curl/8.5.0\r\nX: y").describe(), "curl/8.5.0X: y");
        assert_eq!(device("").describe(), "an unnamed app");
    }

    #[test]
    fn a_browser_is_known_by_its_cookie_and_an_app_by_its_agent() {
        let (browser, set) = device("Firefox/1").with_cookie();
        assert!(set.is_some());
        let (again, none) = browser.clone().with_cookie();
        assert!(none.is_none());
        assert_eq!(browser.key(), again.key());
        assert_ne!(browser.key(), device("Firefox/1").key());
        assert_eq!(device("app/1").key(), device("app/1").key());
    }
}
