//! Building a reply prompt from a turn's context.
//!
//! Every personality needs the same frame around its own instructions: who the learner is,
//! what the tutor must remember (the memory summary and pinned facts), the recent history and
//! the new message. Keeping that frame here means a personality only writes what makes it
//! itself, and a fix to the frame reaches every personality.

use crate::lang;
use crate::tutor::TurnContext;
use crate::types::{ChatMessage, CompletionRequest, Role};

/// One paragraph about the learner, for a system prompt.
pub fn learner_summary(ctx: &TurnContext) -> String {
    let p = &ctx.profile;
    let mut out = format!(
        "The learner is {}, a native {} speaker learning {} at CEFR level {}.",
        if p.display_name.trim().is_empty() {
            "anonymous"
        } else {
            p.display_name.trim()
        },
        lang::name(&p.native_language),
        lang::name(&p.target_language),
        p.level.code(),
    );
    if !p.goals.is_empty() {
        out.push_str(&format!(" Their goals: {}.", p.goals.join(", ")));
    }
    if !p.interests.is_empty() {
        out.push_str(&format!(
            " They are interested in {}.",
            p.interests.join(", ")
        ));
    }
    if let Some(topic) = ctx.topic.as_deref().filter(|t| !t.trim().is_empty()) {
        out.push_str(&format!(" Today's topic: {}.", topic.trim()));
    }
    out
}

/// The messages of a reply request: `system` followed by the memory, the pinned facts, the
/// recent history and the learner's new message.
pub fn messages(mut system: String, ctx: &TurnContext) -> Vec<ChatMessage> {
    if let Some(memory) = ctx.memory.as_deref().filter(|m| !m.trim().is_empty()) {
        system.push_str("\n\nWhat happened earlier in this conversation: ");
        system.push_str(memory.trim());
    }
    if !ctx.pinned.is_empty() {
        system.push_str("\n\nFacts the learner asked you to remember:");
        for fact in &ctx.pinned {
            system.push_str("\n- ");
            system.push_str(fact);
        }
    }
    let mut out = Vec::with_capacity(ctx.history.len() + 2);
    out.push(ChatMessage {
        role: Role::System,
        content: system,
    });
    out.extend(ctx.history.iter().cloned());
    out.push(ChatMessage {
        role: Role::User,
        content: ctx.message.clone(),
    });
    out
}

/// A streamed reply request with the host's default model.
pub fn reply(messages: Vec<ChatMessage>, temperature: f32, max_tokens: u32) -> CompletionRequest {
    CompletionRequest {
        messages,
        model: None,
        temperature: Some(temperature),
        max_tokens: Some(max_tokens),
        json: false,
    }
}
