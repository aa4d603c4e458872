//! The actix actors: the `PluginSupervisor` (plugin health, breaker, hot swap), a
//! `Conversation` per active conversation (the single writer of its messages) and a
//! `Session` per live socket.

pub mod conversation;
pub mod live;
pub mod session;
pub mod supervisor;
