//! Conversations and their messages. History lives here, on the server, so it follows the
//! learner across devices. The model is here; [`store`] holds the queries, [`routes`] the CRUD
//! routes, [`catalogue`] the personalities on offer. Every query is scoped to the caller:
//! someone else's conversation is a 404, the same as one that does not exist.

pub mod catalogue;
pub mod routes;
mod store;

pub use store::*;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::plugins::manifest;
use crate::tutoring::tutor as types;

/// How a conversation is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChatMode {
    /// Explicit corrections, explained.
    Tutor,
    /// Natural conversation with recasts.
    Conversation,
    /// A scenario with roles and a goal.
    RolePlay,
}

impl ChatMode {
    /// As the plugin contract spells it.
    pub fn wit(self) -> types::ChatMode {
        match self {
            ChatMode::Tutor => types::ChatMode::Tutor,
            ChatMode::Conversation => types::ChatMode::Conversation,
            ChatMode::RolePlay => types::ChatMode::RolePlay,
        }
    }

    fn manifest(self) -> manifest::Mode {
        match self {
            ChatMode::Tutor => manifest::Mode::Tutor,
            ChatMode::Conversation => manifest::Mode::Conversation,
            ChatMode::RolePlay => manifest::Mode::RolePlay,
        }
    }

    /// The first-party personality for the mode.
    pub fn default_personality(self) -> &'static str {
        match self {
            ChatMode::Tutor => "tutor",
            ChatMode::Conversation => "partner",
            ChatMode::RolePlay => "roleplay",
        }
    }
}

/// A conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    /// Id.
    pub id: String,
    /// Owner (not shown in the API).
    #[serde(skip_serializing)]
    pub user: String,
    /// Title.
    pub title: String,
    /// The tutor plugin answering.
    pub personality: String,
    /// Mode.
    pub mode: ChatMode,
    /// Target language.
    pub language: String,
    /// Role-play scenario id.
    #[serde(default)]
    pub scenario: Option<String>,
    /// Topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// The level it runs at, when not the learner's own (a class assignment sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<crate::tutoring::profile::Cefr>,
    /// Archived conversations are listed only on request.
    pub archived: bool,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last activity (Unix ms).
    pub updated_at: i64,
    /// Highest message sequence number.
    pub last_seq: i64,
    /// Completed turns.
    pub turns: i64,
    /// Memory: summary of turns older than the window.
    #[serde(default, skip_serializing)]
    pub summary: Option<String>,
    /// Highest sequence number the summary covers.
    #[serde(skip_serializing)]
    pub summary_upto: i64,
    /// Facts the tutor must remember.
    #[serde(skip_serializing)]
    pub pinned: Vec<String>,
}

/// A correction of the learner's words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Correction {
    /// As written.
    pub original: String,
    /// Fixed.
    pub corrected: String,
    /// Why, in the learner's native language.
    pub explanation: String,
    /// grammar, vocabulary, spelling, punctuation, word-order, register, other.
    pub category: String,
}

/// A word worth learning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Word {
    /// In the target language.
    pub term: String,
    /// In the native language.
    pub translation: String,
    /// An example sentence.
    #[serde(default)]
    pub example: Option<String>,
}

/// One message of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    /// Position in the conversation, from 1.
    pub seq: i64,
    /// Who said it.
    pub role: Speaker,
    /// The text.
    pub text: String,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Where it stands.
    pub status: Status,
    /// On learner messages: what was corrected.
    #[serde(default)]
    pub corrections: Vec<Correction>,
    /// On learner messages: words worth learning.
    #[serde(default)]
    pub vocabulary: Vec<Word>,
    /// A role-play's debrief.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debrief: Option<String>,
    /// Why answering failed, on failed learner messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The learner.
    Learner,
    /// The tutor.
    Tutor,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A learner's message being answered.
    Pending,
    /// A learner's message that was answered.
    Answered,
    /// A learner's message whose turn failed: retry it.
    Failed,
    /// A tutor's message.
    Ok,
}

impl Status {
    /// Whether the message was part of an answered exchange (and so belongs in the model's
    /// window and in summaries).
    pub fn settled(self) -> bool {
        matches!(self, Status::Answered | Status::Ok)
    }
}
