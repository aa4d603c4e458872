//! A notifier for tests: "delivers" by remembering each message id in its kv store, so a
//! message sent twice is delivered once; the recipient `down` is unavailable (a retry may work)
//! and an empty subject is invalid (final).

use penpal_host_api::notifications::{Category, Delivery, Notification, Notifier};
use penpal_host_api::types::PluginError;
use penpal_host_api::{kv, log};

struct Courier;

impl Notifier for Courier {
    fn send(message: Notification) -> Result<Delivery, PluginError> {
        if message.recipient == "down" {
            return Err(PluginError::Unavailable("the push service is down".into()));
        }
        if message.subject.is_empty() {
            return Err(PluginError::InvalidInput(
                "a notification needs a subject".into(),
            ));
        }
        let key = format!("sent/{}", message.id);
        let first = kv::get(&key)?.is_none();
        if first {
            kv::set(&key, message.recipient.as_bytes())?;
            log::info(&format!(
                "delivered {} to {}",
                message.topic, message.recipient
            ));
        }
        let security = matches!(message.category, Category::Security);
        Ok(Delivery {
            provider_id: Some(format!(
                "{}{}{}",
                if first { "new:" } else { "again:" },
                message.id,
                if security { ":security" } else { "" }
            )),
        })
    }
}

penpal_host_api::export_notifier!(Courier);
