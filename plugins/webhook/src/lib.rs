//! The webhook notifier: each message goes to the operator's receiver as one JSON POST,
//! signed so the receiver can tell it came from this penpal and was not replayed.
//!
//! Settings: `url` (the receiver; its host must be granted). Secret: `signing_secret`.
//!
//! Each request carries `Penpal-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>" under the secret>` (a receiver checks the HMAC in constant time and refuses an
//! old `t`), and `Penpal-Delivery: <message id>` for receivers that deduplicate. A message
//! already delivered is not posted again (its id is remembered in the plugin's store).

use penpal_host_api::notifications::{Category, Delivery, Notification, Notifier};
use penpal_host_api::types::PluginError;
use penpal_host_api::{config, http, kv};

struct Webhook;

fn category(c: Category) -> &'static str {
    match c {
        Category::Security => "security",
        Category::Account => "account",
        Category::Progress => "progress",
        Category::Marketing => "marketing",
        Category::School => "school",
    }
}

/// `Penpal-Signature` for `body` sent at `t` (unix seconds).
pub fn signature(secret: &[u8], t: u64, body: &[u8]) -> Result<String, PluginError> {
    let t = t.to_string();
    let hex = penpal_host_api::signature::sign_hex(secret, &[t.as_bytes(), b".", body])?;
    Ok(format!("t={t},v1={hex}"))
}

impl Notifier for Webhook {
    fn send(message: Notification) -> Result<Delivery, PluginError> {
        let key = format!("sent/{}", message.id);
        if kv::get(&key)?.is_some() {
            return Ok(Delivery { provider_id: None });
        }
        let url = config::get("url").ok_or_else(|| {
            PluginError::InvalidInput(
                "set the receiver's address: [plugins.webhook] settings.url".into(),
            )
        })?;
        let secret = config::secret("signing_secret")?;
        let body = serde_json::json!({
            "id": message.id,
            "topic": message.topic,
            "category": category(message.category),
            "recipient": message.recipient,
            "locale": message.locale,
            "subject": message.subject,
            "text": message.text_body,
            "html": message.html_body,
            "unsubscribe_url": message.unsubscribe_url,
        })
        .to_string();
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let signature = signature(secret.as_bytes(), t, body.as_bytes())?;
        let response = http::request(
            "POST",
            &url,
            &[
                ("content-type", "application/json"),
                ("penpal-signature", &signature),
                ("penpal-delivery", &message.id),
                ("user-agent", "penpal-webhook/0.1"),
            ],
            body.as_bytes(),
        )?;
        match response.status {
            200..=299 => {
                kv::set(&key, b"1")?;
                Ok(Delivery {
                    provider_id: response.header("x-request-id"),
                })
            }
            // Throttled or failing: another attempt may work.
            408 | 429 | 500..=599 => Err(PluginError::Unavailable(format!(
                "the receiver answered {}",
                response.status
            ))),
            401 | 403 => Err(PluginError::Denied(format!(
                "the receiver refused the signature ({}): check signing_secret",
                response.status
            ))),
            status => Err(PluginError::InvalidInput(format!(
                "the receiver answered {status}: {}",
                response.text().chars().take(200).collect::<String>()
            ))),
        }
    }
}

penpal_host_api::export_notifier!(Webhook);
