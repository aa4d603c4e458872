//! The live protocol: every event the server sends about a conversation ([`ServerEvent`]) and
//! every frame a client sends on its socket ([`ClientFrame`]), typed once and shared by the
//! three ways to follow a turn — the WebSocket, Server-Sent Events and the whole-reply POST.
//! A frame is validated here, at the edge; what gets past [`ClientFrame::parse`] is well formed.
//!
//! The protocol is published as an AsyncAPI 3 document at `/asyncapi.json` ([`asyncapi`]),
//! built from the same types, so the document cannot drift from what is sent.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::conversations::{Correction, Message, Word};
use super::profile::Cefr;

/// What a turn suggested about the learner's level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct LevelSeen {
    /// The level observed.
    pub observed: Cefr,
    /// From 0 to 1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: f32,
}

/// The turn being answered, as far as it has got.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Running {
    /// The turn.
    pub turn_id: String,
    /// The learner message it answers (0 while it is being stored).
    pub learner_seq: i64,
    /// The reply so far.
    pub text: String,
}

/// First event on a socket: the conversation, and the turn running now, if any.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Hello {
    /// The conversation's id.
    pub conversation: String,
    /// The running turn.
    pub running: Option<Running>,
}

/// A stored message replayed to a client catching up (`resume` or `?after=`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Replayed {
    /// Its sequence number.
    pub seq: i64,
    /// The message.
    pub message: Message,
}

/// A learner's message was stored and its turn began (every subscriber hears it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageAccepted {
    /// The turn answering it.
    pub turn_id: String,
    /// The stored message.
    pub message: Message,
}

/// The socket's own message was stored: the answer to its `message` or `retry` frame.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MessageStored {
    /// The turn answering it.
    pub turn_id: String,
    /// The message's sequence number.
    pub seq: i64,
    /// The frame's `client_id`, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The running turn's reply so far, sent to a client that (re)joins mid-turn.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TurnResume {
    /// The turn.
    pub turn_id: String,
    /// The learner message it answers.
    pub seq: i64,
    /// The reply so far; `turn.delta` events continue from its end.
    pub text: String,
}

/// More of the reply.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TurnDelta {
    /// The turn.
    pub turn_id: String,
    /// Where `text` starts in the reply, in bytes: a client that has more drops the overlap.
    pub offset: usize,
    /// The new text.
    pub text: String,
}

/// The turn is answered and stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TurnComplete {
    /// The turn.
    pub turn_id: String,
    /// The learner's message, now `answered`, with its corrections.
    pub learner: Message,
    /// The tutor's reply.
    pub reply: Message,
    /// The corrections of the learner's message.
    pub corrections: Vec<Correction>,
    /// Words worth learning from the turn.
    pub vocabulary: Vec<Word>,
    /// What the turn suggests about the learner's level.
    pub level: Option<LevelSeen>,
    /// A role-play's closing debrief.
    pub debrief: Option<String>,
}

/// The turn failed; the learner's message is kept (`failed`) and may be retried.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TurnError {
    /// The turn.
    pub turn_id: String,
    /// The learner message it was answering.
    pub seq: i64,
    /// `llm_unavailable`, `tutor_unavailable`, `tutor_refused` or `internal`.
    pub code: String,
    /// For people (clients translate by `code`).
    pub message: String,
    /// Whether retrying the same message may work.
    pub retryable: bool,
    /// Quote it to support.
    pub support_id: Option<String>,
}

/// The conversation was deleted or reset; the socket closes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConversationClosed {
    /// The conversation's id.
    pub conversation: String,
}

/// The session the socket was opened in has ended (signed out, password changed, role
/// changed); the socket closes with code 4401.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SessionEnded {
    /// For people.
    pub message: String,
}

/// A frame the server could not take.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FrameError {
    /// `bad_frame` (not a frame of this protocol), `turn_in_progress`, `empty_message`,
    /// `message_too_long`, `not_retryable`, `not_found`, `plan_limit` (the account's plan does
    /// not include this message: the day's are used up, or the mode or personality is in
    /// another plan; the message says what to do), `too_large` (over 16 KiB; the socket closes
    /// with 1009) or `unavailable` (try again).
    pub code: String,
    /// For people.
    pub message: String,
    /// The frame's `client_id`, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The answer to a `ping` frame.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Pong {}

/// Everything the server sends about a conversation, tagged by `type`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
pub enum ServerEvent {
    /// `hello`
    #[serde(rename = "hello")]
    Hello(Hello),
    /// `message`
    #[serde(rename = "message")]
    Replayed(Replayed),
    /// `message.accepted`
    #[serde(rename = "message.accepted")]
    MessageAccepted(MessageAccepted),
    /// `message.stored`
    #[serde(rename = "message.stored")]
    MessageStored(MessageStored),
    /// `turn.resume`
    #[serde(rename = "turn.resume")]
    TurnResume(TurnResume),
    /// `turn.delta`
    #[serde(rename = "turn.delta")]
    TurnDelta(TurnDelta),
    /// `turn.complete`
    #[serde(rename = "turn.complete")]
    TurnComplete(Box<TurnComplete>),
    /// `turn.error`
    #[serde(rename = "turn.error")]
    TurnError(TurnError),
    /// `conversation.closed`
    #[serde(rename = "conversation.closed")]
    ConversationClosed(ConversationClosed),
    /// `session.ended`
    #[serde(rename = "session.ended")]
    SessionEnded(SessionEnded),
    /// `error`
    #[serde(rename = "error")]
    Error(FrameError),
    /// `pong`
    #[serde(rename = "pong")]
    Pong(Pong),
}

impl ServerEvent {
    /// Its `type` (also the SSE event name).
    pub fn name(&self) -> &'static str {
        match self {
            ServerEvent::Hello(_) => "hello",
            ServerEvent::Replayed(_) => "message",
            ServerEvent::MessageAccepted(_) => "message.accepted",
            ServerEvent::MessageStored(_) => "message.stored",
            ServerEvent::TurnResume(_) => "turn.resume",
            ServerEvent::TurnDelta(_) => "turn.delta",
            ServerEvent::TurnComplete(_) => "turn.complete",
            ServerEvent::TurnError(_) => "turn.error",
            ServerEvent::ConversationClosed(_) => "conversation.closed",
            ServerEvent::SessionEnded(_) => "session.ended",
            ServerEvent::Error(_) => "error",
            ServerEvent::Pong(_) => "pong",
        }
    }

    /// The turn it belongs to.
    pub fn turn_id(&self) -> Option<&str> {
        match self {
            ServerEvent::MessageAccepted(e) => Some(&e.turn_id),
            ServerEvent::MessageStored(e) => Some(&e.turn_id),
            ServerEvent::TurnResume(e) => Some(&e.turn_id),
            ServerEvent::TurnDelta(e) => Some(&e.turn_id),
            ServerEvent::TurnComplete(e) => Some(&e.turn_id),
            ServerEvent::TurnError(e) => Some(&e.turn_id),
            _ => None,
        }
    }

    /// Whether it ends its turn.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ServerEvent::TurnComplete(_) | ServerEvent::TurnError(_)
        )
    }

    /// The JSON text of the event.
    pub fn to_json(&self) -> String {
        // Only strings, numbers and derived structs: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| {
            tracing::error!(error = %e, "an event did not serialise");
            String::from(r#"{"type":"error","code":"internal","message":"an event was lost"}"#)
        })
    }
}

/// A new learner message.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// The learner's words: not blank, at most 4,000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    pub text: String,
    /// Echoed in `message.stored` (or `error`) so the client can match its optimistic copy.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub client_id: Option<String>,
}

/// Answer a failed message again (only the newest, and not while a turn runs).
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryMessage {
    /// The failed message's sequence number.
    pub seq: i64,
}

/// Send everything after `after_seq`, then the running turn so far.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    /// The last sequence number the client has.
    pub after_seq: i64,
}

/// An application-level keep-alive; the server answers `pong`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ping {}

/// Everything a client sends on a socket, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// `message`
    Message(SendMessage),
    /// `retry`
    Retry(RetryMessage),
    /// `resume`
    Resume(Resume),
    /// `ping`
    Ping(Ping),
}

impl ClientFrame {
    /// Reads one text frame; the error is for the client, naming what is wrong.
    pub fn parse(text: &str) -> Result<ClientFrame, String> {
        serde_json::from_str(text).map_err(|e| {
            format!(
                "not a frame this server takes ({e}); send {{\"type\": \"message\", \"text\": …}}, \
                 `retry`, `resume` or `ping`"
            )
        })
    }
}

/// A message of the protocol: its name (the `type`), who sends it, a summary, and its payload.
struct Described {
    name: &'static str,
    summary: &'static str,
    schema: &'static str,
}

macro_rules! described {
    ($($name:literal => $ty:ty : $summary:literal),* $(,)?) => {{
        let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
        let mut messages = Vec::new();
        $(
            schemas.push((<$ty as utoipa::ToSchema>::name().into_owned(), <$ty as utoipa::PartialSchema>::schema()));
            <$ty as utoipa::ToSchema>::schemas(&mut schemas);
            messages.push(Described { name: $name, summary: $summary, schema: stringify!($ty) });
        )*
        (messages, schemas)
    }};
}

/// The AsyncAPI 3 document of the live protocol.
pub fn asyncapi() -> Value {
    let (server, mut schemas) = described! {
        "hello" => Hello: "First event on a socket: the conversation and its running turn.",
        "message" => Replayed: "A stored message, replayed to a client catching up.",
        "message.accepted" => MessageAccepted: "A learner's message was stored; its turn began.",
        "message.stored" => MessageStored: "This socket's message or retry was stored.",
        "turn.resume" => TurnResume: "The running turn's reply so far, for a client joining mid-turn.",
        "turn.delta" => TurnDelta: "More of the reply.",
        "turn.complete" => TurnComplete: "The turn is answered and stored.",
        "turn.error" => TurnError: "The turn failed; the message is kept and may be retried.",
        "conversation.closed" => ConversationClosed: "The conversation was deleted or reset.",
        "session.ended" => SessionEnded: "The session ended; the socket closes with code 4401.",
        "error" => FrameError: "A frame the server could not take.",
        "pong" => Pong: "The answer to `ping`.",
    };
    let (client, client_schemas) = described! {
        "message" => SendMessage: "A new learner message.",
        "retry" => RetryMessage: "Answer the newest failed message again.",
        "resume" => Resume: "Replay what came after `after_seq`, then the running turn.",
        "ping" => Ping: "Keep-alive; answered by `pong`.",
    };
    schemas.extend(client_schemas);

    let schemas: serde_json::Map<String, Value> = schemas
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or(Value::Null)))
        .collect();
    // A message's payload is its type's schema with the `type` tag added (and required): the
    // tag is part of every frame, and a frame type that refuses unknown fields must list it.
    let payload = |d: &Described| {
        let mut schema = schemas.get(d.schema).cloned().unwrap_or_else(|| json!({}));
        if let Some(object) = schema.as_object_mut() {
            object.insert("type".into(), json!("object"));
            let properties = object.entry("properties").or_insert_with(|| json!({}));
            properties["type"] = json!({"const": d.name});
            let required = object.entry("required").or_insert_with(|| json!([]));
            if let Some(list) = required.as_array_mut() {
                list.insert(0, json!("type"));
            }
        }
        schema
    };
    let mut messages = serde_json::Map::new();
    let mut live = serde_json::Map::new();
    let mut stream = serde_json::Map::new();
    let (mut sent, mut received, mut streamed) = (Vec::new(), Vec::new(), Vec::new());
    let sides = server
        .iter()
        .map(|d| ("server", d))
        .chain(client.iter().map(|d| ("client", d)));
    for (side, d) in sides {
        let key = format!("{side}.{}", d.name);
        messages.insert(
            key.clone(),
            json!({"name": d.name, "title": d.name, "summary": d.summary,
                   "contentType": "application/json", "payload": payload(d)}),
        );
        let component = json!({"$ref": format!("#/components/messages/{key}")});
        live.insert(key.clone(), component.clone());
        let on_live = json!({"$ref": format!("#/channels/live/messages/{key}")});
        if side == "client" {
            received.push(on_live);
            continue;
        }
        sent.push(on_live);
        // What a turn's SSE stream carries: its own events, not the socket's bookkeeping.
        if matches!(
            d.name,
            "message.accepted" | "turn.delta" | "turn.complete" | "turn.error"
        ) {
            stream.insert(key.clone(), component);
            streamed.push(json!({"$ref": format!("#/channels/turn/messages/{key}")}));
        }
    }
    json!({
        "asyncapi": "3.1.0",
        "info": {
            "title": "Penpal live protocol",
            "version": "1.0.0",
            "description": "How a client follows a conversation's turns. Over the socket, every \
                frame is a JSON object tagged by `type`. The same events, one per SSE event named \
                by its `type`, answer `POST /v1/conversations/{id}/messages` with \
                `Accept: text/event-stream`; without it the POST answers the `turn.complete` \
                event itself (201) or the error of `turn.error`. The REST API is in /openapi.json."
        },
        "defaultContentType": "application/json",
        "channels": {
            "live": {
                "address": "/v1/conversations/{id}/live",
                "title": "A conversation's socket",
                "description": "Open with `?ticket=` from `POST /v1/conversations/{id}/live-ticket` \
                    (single use, 60 s), optionally `&after=SEQ` to replay what came after SEQ. \
                    The server pings every 15 s and closes a socket silent for 45 s; code 4401 \
                    means the session ended, 1009 a frame over 16 KiB.",
                "parameters": {"id": {"description": "The conversation's id."}},
                "messages": live
            },
            "turn": {
                "address": "/v1/conversations/{id}/messages",
                "title": "One turn as Server-Sent Events",
                "description": "`POST` a message with `Accept: text/event-stream`: the turn's \
                    events follow, ending with `turn.complete` or `turn.error`.",
                "parameters": {"id": {"description": "The conversation's id."}},
                "messages": stream
            }
        },
        "operations": {
            "sendEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/live"},
                "summary": "Events the server sends on a socket.",
                "messages": sent
            },
            "receiveFrames": {
                "action": "receive",
                "channel": {"$ref": "#/channels/live"},
                "summary": "Frames a client sends on a socket.",
                "messages": received
            },
            "streamTurn": {
                "action": "send",
                "channel": {"$ref": "#/channels/turn"},
                "summary": "A turn's events as Server-Sent Events.",
                "messages": streamed
            }
        },
        "components": {"messages": messages, "schemas": schemas}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_strictly_and_events_tagged_by_type() {
        assert_eq!(
            ClientFrame::parse(r#"{"type":"message","text":"Salut","client_id":"c1"}"#),
            Ok(ClientFrame::Message(SendMessage {
                text: "Salut".into(),
                client_id: Some("c1".into())
            }))
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping(Ping {}))
        );
        for bad in [
            r#"{"type":"message"}"#,
            r#"{"type":"message","text":"x","admin":true}"#,
            r#"{"type":"shout","text":"x"}"#,
            r#"{"type":"retry","seq":"one"}"#,
            "not json",
        ] {
            assert!(ClientFrame::parse(bad).is_err(), "{bad}");
        }
        let delta = ServerEvent::TurnDelta(TurnDelta {
            turn_id: "t".into(),
            offset: 3,
            text: "lut".into(),
        });
        assert_eq!(
            delta.to_json(),
            r#"{"type":"turn.delta","turn_id":"t","offset":3,"text":"lut"}"#
        );
        assert_eq!(delta.turn_id(), Some("t"));
        assert!(!delta.is_terminal());
        assert_eq!(ServerEvent::Pong(Pong {}).to_json(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn the_document_has_a_message_for_every_event_and_frame() {
        let doc = asyncapi();
        let messages = doc["components"]["messages"].as_object().unwrap();
        for name in [
            "hello",
            "message",
            "message.accepted",
            "message.stored",
            "turn.resume",
            "turn.delta",
            "turn.complete",
            "turn.error",
            "conversation.closed",
            "session.ended",
            "error",
            "pong",
        ] {
            assert!(messages.contains_key(&format!("server.{name}")), "{name}");
        }
        for name in ["message", "retry", "resume", "ping"] {
            assert!(messages.contains_key(&format!("client.{name}")), "{name}");
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(
            schemas.contains_key("Message"),
            "nested schemas are included"
        );
        assert!(schemas.contains_key("TurnComplete"));
    }
}
