//! Notifications: the outbox, templates, preferences and channels. So far the room holds its
//! client for the `notifier` world ([`notifier::NotifierClient`]); the outbox and email build
//! on it.

pub mod notifier;
