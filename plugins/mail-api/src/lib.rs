//! Email through an HTTP mail API shaped like SendGrid's v3 `mail/send` — what penpal's
//! earlier product used — for operators who send mail that way rather than over SMTP.
//!
//! Settings: `from` (required, such as `Penpal <no-reply@example.com>`), `endpoint` (default
//! `https://api.sendgrid.com/v3/mail/send`; `https://api.eu.sendgrid.com/v3/mail/send` for
//! EU accounts, or a compatible service whose host the operator grants). Secret: `api_key`.
//!
//! The text and HTML parts, the one-click unsubscribe headers (RFC 8058) and the message id
//! (as `custom_args.penpal_id` and an `Idempotency-Key` header) go with every message; a
//! message already accepted is not sent again (its id is remembered in the plugin's store).

use penpal_host_api::notifications::{Category, Delivery, Notification, Notifier};
use penpal_host_api::types::PluginError;
use penpal_host_api::{config, http, kv};
use serde_json::{Value, json};

const ENDPOINT: &str = "https://api.sendgrid.com/v3/mail/send";

struct MailApi;

/// `Name <address>` or a bare address, as the API's `{email, name}`.
fn mailbox(text: &str) -> Value {
    match text.rsplit_once('<') {
        Some((name, rest)) => {
            let email = rest.trim_end_matches('>').trim();
            let name = name.trim().trim_matches('"');
            if name.is_empty() {
                json!({"email": email})
            } else {
                json!({"email": email, "name": name})
            }
        }
        None => json!({"email": text.trim()}),
    }
}

/// The `mail/send` body for `m`, from `from`.
pub fn body(m: &Notification, from: &str) -> Value {
    let mut content = vec![json!({"type": "text/plain", "value": m.text_body})];
    if let Some(html) = &m.html_body {
        content.push(json!({"type": "text/html", "value": html}));
    }
    let mut body = json!({
        "personalizations": [{"to": [{"email": m.recipient}]}],
        "from": mailbox(from),
        "subject": m.subject,
        "content": content,
        "custom_args": {"penpal_id": m.id, "penpal_topic": m.topic},
        "categories": [match m.category {
            Category::Security => "security",
            Category::Account => "account",
            Category::Progress => "progress",
            Category::Marketing => "marketing",
            Category::School => "school",
        }],
    });
    if let Some(url) = &m.unsubscribe_url {
        body["headers"] = json!({
            "List-Unsubscribe": format!("<{url}>"),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        });
    }
    body
}

impl Notifier for MailApi {
    fn send(message: Notification) -> Result<Delivery, PluginError> {
        let key = format!("sent/{}", message.id);
        if kv::get(&key)?.is_some() {
            return Ok(Delivery { provider_id: None });
        }
        let from = config::get("from").ok_or_else(|| {
            PluginError::InvalidInput(
                "set the sender: [plugins.mail-api] settings.from = \"Name <address>\"".into(),
            )
        })?;
        let endpoint = config::get("endpoint").unwrap_or_else(|| ENDPOINT.to_string());
        let api_key = config::secret("api_key")?;
        let auth = format!("Bearer {api_key}");
        let payload = body(&message, &from).to_string();
        let response = http::request(
            "POST",
            &endpoint,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("idempotency-key", &message.id),
            ],
            payload.as_bytes(),
        )?;
        match response.status {
            200..=299 => {
                kv::set(&key, b"1")?;
                Ok(Delivery {
                    provider_id: response.header("x-message-id"),
                })
            }
            408 | 429 | 500..=599 => Err(PluginError::Unavailable(format!(
                "the mail API answered {}",
                response.status
            ))),
            401 | 403 => Err(PluginError::Denied(format!(
                "the mail API refused the key ({}): check api_key",
                response.status
            ))),
            status => Err(PluginError::InvalidInput(format!(
                "the mail API refused the message ({status}): {}",
                response.text().chars().take(300).collect::<String>()
            ))),
        }
    }
}

penpal_host_api::export_notifier!(MailApi);
