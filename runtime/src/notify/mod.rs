//! Notifications: the outbox's delivery ([`outbox`]), the built-in email channel ([`mail`]),
//! the templates and their translations ([`templates`]), and the client for notifier plugins
//! ([`notifier::NotifierClient`]). Rooms enqueue a message through [`crate::store::outbox`] in
//! the same transaction as what causes it; this room delivers it.

pub mod mail;
pub mod notifier;
pub mod outbox;
pub mod preferences;
pub mod routes;
pub mod schedule;
pub mod templates;

/// The notify room's part of a person's data: their notification settings, and the messages
/// sent to them (without their contents, which are cleared once sent).
pub struct Notifications;

impl crate::store::personal::PersonalData for Notifications {
    fn export(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (
                "notifications",
                "SELECT template, category, channel, status, created_at, sent_at FROM outbox WHERE user = $u ORDER BY created_at",
            ),
            (
                "notification_settings",
                "SELECT channels, quiet_start, quiet_end, hour, digest_day, updated_at FROM type::record('notify_pref', $u)",
            ),
        ]
    }

    fn delete(&self) -> &'static str {
        "DELETE outbox WHERE user = $u; DELETE type::record('notify_pref', $u); DELETE notify_once WHERE user = $u;"
    }
}
