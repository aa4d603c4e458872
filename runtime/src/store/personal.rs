//! A person's data, collected from every room that holds some: each room says, through
//! [`PersonalData`], which of its rows belong to a user — for the export — and how to delete
//! them. Account deletion runs every room's statements in one transaction, so an account is
//! deleted whole or not at all; a new room (billing, notify, lms) registers its part in the
//! composition root and neither the export nor the deletion changes.

use serde_json::{Map, Value, json};

use super::{Db, StoreResult};

/// One room's part of a person's data. Every query and statement reads the user's id as `$u`.
pub trait PersonalData: Send + Sync {
    /// The export's parts this room fills: (key, query whose rows are that part).
    fn export(&self) -> &'static [(&'static str, &'static str)];

    /// Statements deleting the user's rows, run inside the account's deletion transaction
    /// (before the account itself is deleted).
    fn delete(&self) -> &'static str;

    /// Drops what this room holds of the user in memory (running conversations, say), just
    /// before their rows are deleted.
    fn forget(&self, _user: &str) {}

    /// Ends what this room keeps going for the user outside penpal (a subscription at a
    /// payment provider) before anything is deleted; an error stops the deletion, so nobody
    /// is charged for an account that no longer exists.
    fn release<'a>(
        &'a self,
        _user: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send + 'a>> {
        Box::pin(async { Ok(()) })
    }
}

/// Every room's parts of `user`'s data, by key.
pub async fn export(
    db: &Db,
    user: &str,
    rooms: &[&dyn PersonalData],
) -> StoreResult<Map<String, Value>> {
    let mut parts = Map::new();
    for room in rooms {
        for (key, query) in room.export() {
            let rows: Vec<Value> = db.rows(query, json!({"u": user})).await?;
            parts.insert((*key).to_string(), Value::Array(rows));
        }
    }
    Ok(parts)
}

/// Deletes `user`'s rows from every room, then `last` (the account itself), in one transaction.
pub async fn delete(
    db: &Db,
    user: &str,
    rooms: &[&dyn PersonalData],
    last: &str,
) -> StoreResult<()> {
    let mut sql = String::from("BEGIN TRANSACTION;\n");
    for room in rooms {
        sql.push_str(room.delete());
        sql.push('\n');
    }
    sql.push_str(last);
    sql.push_str("\nCOMMIT TRANSACTION;");
    db.exec(&sql, json!({"u": user})).await
}
