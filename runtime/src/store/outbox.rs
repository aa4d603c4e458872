//! The transactional outbox's write side: a [`Notice`] becomes a row of `outbox` **in the same
//! transaction as the change that causes it** (put together in a [`Batch`]) (a sign-up, a password change…), so a crash can
//! lose neither without the other. Delivery — templates, channels, retries, leases — is the
//! notify room's; this module only knows the row's shape, so any room can enqueue without
//! depending on the rooms above it.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Db, StoreResult, new_id, now_ms};

/// How much a learner may choose about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Security notices and account recovery: always sent, never carry an unsubscribe link.
    Security,
    /// About the account (welcome, verification, billing).
    Account,
    /// Progress digests and reminders.
    Progress,
    /// News and offers: only to those who opted in.
    Marketing,
}

impl Category {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Security => "security",
            Category::Account => "account",
            Category::Progress => "progress",
            Category::Marketing => "marketing",
        }
    }
}

/// A message to send: which template, to whom, in which language, with what values.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The template (`verify_email`, `password_reset`, …).
    pub template: &'static str,
    /// Its category.
    pub category: Category,
    /// The account it concerns, if any (its rows go with the account).
    pub user: Option<String>,
    /// The address.
    pub to: String,
    /// The language to write in (falls back to English).
    pub lang: String,
    /// The template's values. They may hold a single-use link: the row's values are cleared
    /// once the message is sent.
    pub vars: Value,
}

/// A SurrealQL statement that enqueues `notice`, and the variables it reads — each named with
/// `prefix`, so several notices (and the caller's own variables) share one transaction.
pub fn enqueue(notice: &Notice, prefix: &str) -> (String, Vec<(String, Value)>) {
    let id = format!("{prefix}_id");
    let row = format!("{prefix}_row");
    let sql = format!("CREATE type::record('outbox', ${id}) CONTENT ${row};");
    let now = now_ms();
    let mut content = json!({
        "template": notice.template,
        "category": notice.category.as_str(),
        "to": notice.to,
        "lang": notice.lang,
        "vars": notice.vars,
        "channel": "email",
        "status": "pending",
        "attempts": 0,
        "next_at": now,
        "lease_until": 0,
        "created_at": now,
    });
    // An absent field, not a null: the column is `option<string>`.
    if let (Some(user), Some(map)) = (&notice.user, content.as_object_mut()) {
        map.insert("user".into(), json!(user));
    }
    (sql, vec![(id, json!(new_id())), (row, content)])
}

/// A transaction being put together: statements and the variables they read.
#[derive(Debug, Default)]
pub struct Batch {
    sql: String,
    vars: Map<String, Value>,
}

impl Batch {
    /// Adds `sql`, reading `vars`.
    pub fn push(&mut self, sql: &str, vars: impl IntoIterator<Item = (String, Value)>) {
        self.sql.push_str(sql);
        self.sql.push('\n');
        self.vars.extend(vars);
    }

    /// Adds the enqueueing of `notice` (its variables prefixed `prefix`).
    pub fn notify(&mut self, notice: &Notice, prefix: &str) {
        let (sql, vars) = enqueue(notice, prefix);
        self.push(&sql, vars);
    }

    /// Runs everything in one transaction.
    pub async fn commit(self, db: &Db) -> StoreResult<()> {
        let sql = format!("BEGIN TRANSACTION;\n{}COMMIT TRANSACTION;", self.sql);
        db.exec(&sql, Value::Object(self.vars)).await
    }
}
