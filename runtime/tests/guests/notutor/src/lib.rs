//! Its manifest says tutor, but it exports the notifier world: loading must refuse it.
use penpal_host_api::notifications::{Delivery, Notification, Notifier};
use penpal_host_api::types::PluginError;

struct Quiet;

impl Notifier for Quiet {
    fn send(_: Notification) -> Result<Delivery, PluginError> {
        Ok(Delivery { provider_id: None })
    }
}

penpal_host_api::export_notifier!(Quiet);
