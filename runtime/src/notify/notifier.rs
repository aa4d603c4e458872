//! The notify room's client for the `notifier` world. Notifiers run from `penpal:plugin@0.2`.

use std::sync::Arc;

use crate::plugins::bindings::v0_2::notifier::Notifier;
use crate::plugins::{CallError, Kind, OutputSize, PluginHost, lift};

pub use crate::plugins::bindings::v0_2::notifier::exports::penpal::plugin::notifications::{
    Category, Delivery, Notification,
};

/// Calls notifier plugins.
#[derive(Clone)]
pub struct NotifierClient {
    host: Arc<PluginHost>,
}

impl NotifierClient {
    /// A client over `host`'s installed notifiers.
    pub fn new(host: Arc<PluginHost>) -> Self {
        NotifierClient { host }
    }

    /// Delivers `message` through notifier `name`.
    pub async fn send(&self, name: &str, message: &Notification) -> Result<Delivery, CallError> {
        let plugin = self.host.get_kind(name, Kind::Notifier)?;
        self.host
            .call(&plugin, "send", |n: Notifier, mut store| async move {
                let r = n
                    .penpal_plugin_notifications()
                    .call_send(&mut store, message)
                    .await;
                (store, lift(r))
            })
            .await
    }
}

impl OutputSize for Delivery {
    fn output_size(&self) -> usize {
        self.provider_id.output_size()
    }
}
