//! The conversation and message queries: the only SurrealQL on those tables outside the
//! turn's own transaction.

use serde_json::json;

use super::*;
use crate::http::{ApiError, ApiResult};
use crate::store::{Db, StoreResult, now_ms};
use crate::tutoring::profile::Profile;

/// The conversation `id` if `user` owns it.
pub async fn owned(db: &Db, user: &str, id: &str) -> ApiResult<Conversation> {
    fetch(db, id)
        .await?
        .filter(|c| c.user == user)
        .ok_or(ApiError::NotFound("conversation"))
}

/// The conversation `id`, whoever owns it.
pub async fn fetch(db: &Db, id: &str) -> StoreResult<Option<Conversation>> {
    if !valid_id(id) {
        return Ok(None);
    }
    db.one(
        "SELECT *, record::id(id) AS id FROM type::record('conversation', $id)",
        json!({"id": id}),
    )
    .await
}

/// Ids are 32 hex digits; anything else cannot name a record.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A learner's message as stored, with what the turn answering it needs.
#[derive(Debug)]
pub struct Appended {
    /// The conversation, with the message counted.
    pub conv: Conversation,
    /// The message, `pending`.
    pub message: Message,
    /// Its owner's profile, as of this message.
    pub profile: Profile,
}

/// Stores `text` as the next learner message of conversation `id`, `pending`. One
/// transaction also moves the conversation on and reads its owner's profile, so a turn
/// starts with one query. With `settle`, a message left `pending` before it (a restart cut
/// its turn off) is marked failed first. `None` when the conversation is gone.
pub async fn append_learner(
    db: &Db,
    id: &str,
    text: String,
    settle: bool,
) -> StoreResult<Option<Appended>> {
    const SETTLE: &str = "UPDATE type::record('message', [$c, $conv.last_seq - 1])
            SET status = 'failed', error = 'interrupted' WHERE status = 'pending';";
    let sql = format!(
        "BEGIN TRANSACTION;
         LET $conv = UPDATE ONLY type::record('conversation', $c) SET last_seq += 1, updated_at = $now RETURN AFTER;
         IF $conv = NONE {{ THROW 'gone' }};
         {settle}
         CREATE type::record('message', [$c, $conv.last_seq]) CONTENT {{ conversation: $c, user: $conv.user, seq: $conv.last_seq,
            role: 'learner', text: $text, created_at: $now, status: 'pending', corrections: [], vocabulary: [] }} RETURN NONE;
         RETURN {{ conv: $conv, profile: (SELECT VALUE profile FROM ONLY type::record('user', $conv.user)) }};
         COMMIT TRANSACTION;",
        settle = if settle { SETTLE } else { "" }
    );
    let now = now_ms();
    let res = db
        .run(&sql, json!({"c": id, "now": now, "text": text}))
        .await;
    let mut out = match res {
        // The `RETURN`'s value; the other statements answer nothing worth reading.
        Ok(rows) => rows
            .into_iter()
            .rfind(|r| r.get("conv").is_some())
            .unwrap_or_default(),
        // The transaction cannot tell "gone" from a failure in a way that survives the
        // client, so a failure asks.
        Err(e) => {
            return match fetch(db, id).await? {
                None => Ok(None),
                Some(_) => Err(e),
            };
        }
    };
    let mut conv = out["conv"].take();
    conv["id"] = json!(id);
    let conv: Conversation = serde_json::from_value(conv)?;
    let profile: Option<Profile> = serde_json::from_value(out["profile"].take())?;
    let message = Message {
        seq: conv.last_seq,
        role: Speaker::Learner,
        text,
        created_at: now,
        status: Status::Pending,
        corrections: vec![],
        vocabulary: vec![],
        debrief: None,
        error: None,
    };
    Ok(Some(Appended {
        conv,
        message,
        profile: profile.unwrap_or_default(),
    }))
}

/// The message `seq` of `conversation`.
pub async fn message(db: &Db, conversation: &str, seq: i64) -> StoreResult<Option<Message>> {
    db.one(
        "SELECT * FROM type::record('message', [$c, $seq])",
        json!({"c": conversation, "seq": seq}),
    )
    .await
}

/// Puts a failed learner message back to pending, for a retry.
pub async fn reopen(db: &Db, conversation: &str, seq: i64) -> StoreResult<()> {
    db.exec(
        "UPDATE type::record('message', [$c, $s]) SET status = 'pending', error = NONE",
        json!({"c": conversation, "s": seq}),
    )
    .await
}

/// Marks a learner message failed with `code` (the code, not the text: what went wrong
/// upstream is the logs' business).
pub async fn fail(db: &Db, conversation: &str, seq: i64, code: &str) -> StoreResult<()> {
    db.exec(
        "UPDATE type::record('message', [$c, $s]) SET status = 'failed', error = $why",
        json!({"c": conversation, "s": seq, "why": code}),
    )
    .await
}

/// Messages with `seq > after`, oldest first, at most `limit`.
pub async fn messages_after(
    db: &Db,
    conversation: &str,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    db.rows(
        // Seqs are dense, so the next `limit` messages are exactly this range.
        // A key range reads in key order; no sort needed.
        "SELECT * FROM message:[$c, $from]..[$c, $to]",
        json!({"c": conversation, "from": after.saturating_add(1), "to": after.saturating_add(1).saturating_add(limit)}),
    )
    .await
}

/// The newest `limit` messages with `seq < before`, oldest first. Seqs are dense, so this
/// reads exactly the range `before - limit .. before`: pass at most `last_seq + 1`.
pub async fn messages_before(
    db: &Db,
    conversation: &str,
    before: i64,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    db.rows(
        "SELECT * FROM message:[$c, $from]..[$c, $before]",
        json!({"c": conversation, "before": before, "from": before.saturating_sub(limit)}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "0123456789abcdef0123456789abcdef";

    async fn seeded() -> Db {
        let db = Db::connect("mem://", None).await.unwrap();
        db.exec(
            "CREATE user:u CONTENT { email: 'a@example.com', password_hash: 'x', role: 'learner', created_at: 0,
                password_changed_at: 0, profile: { display_name: 'Ana', targets: [{ language: 'es', level: 'B1' }] } };
             CREATE type::record('conversation', $c) CONTENT { user: 'u', title: 't', personality: 'p', mode: 'tutor', language: 'es',
                archived: false, created_at: 0, updated_at: 0, last_seq: 0, turns: 0, summary_upto: 0, pinned: [] };",
            json!({"c": C}),
        )
        .await
        .unwrap();
        db
    }

    #[tokio::test]
    async fn appending_numbers_messages_stores_them_pending_and_reads_the_profile() {
        let db = seeded().await;
        let a = append_learner(&db, C, "hola".into(), false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.conv.id.as_str(), a.conv.last_seq, a.message.seq),
            (C, 1, 1)
        );
        assert_eq!(a.profile.display_name, "Ana");
        let b = append_learner(&db, C, "otra".into(), false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.message.seq, 2);
        let stored = message(&db, C, 2).await.unwrap().unwrap();
        assert_eq!(
            (stored.text.as_str(), stored.status),
            ("otra", Status::Pending)
        );
        assert_eq!(fetch(&db, C).await.unwrap().unwrap().last_seq, 2);
    }

    #[tokio::test]
    async fn settling_fails_a_message_a_restart_left_pending() {
        let db = seeded().await;
        append_learner(&db, C, "cut off".into(), false)
            .await
            .unwrap()
            .unwrap();
        append_learner(&db, C, "again".into(), true)
            .await
            .unwrap()
            .unwrap();
        let first = message(&db, C, 1).await.unwrap().unwrap();
        assert_eq!(first.status, Status::Failed);
        assert_eq!(first.error.as_deref(), Some("interrupted"));
    }

    #[tokio::test]
    async fn appending_to_a_missing_conversation_is_none_and_stores_nothing() {
        let db = seeded().await;
        assert!(
            append_learner(&db, "fedcba9876543210fedcba9876543210", "hola".into(), true)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            message(&db, "fedcba9876543210fedcba9876543210", 1)
                .await
                .unwrap()
                .is_none()
        );
    }
}
