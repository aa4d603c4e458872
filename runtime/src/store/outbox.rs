//! The transactional outbox's write side: a [`Notice`] becomes a row of `outbox` **in the same
//! transaction as the change that causes it** (put together in a [`Batch`]) (a sign-up, a password change…), so a crash can
//! lose neither without the other. Delivery — templates, channels, retries, leases — is the
//! notify room's; this module only knows the row's shape, so any room can enqueue without
//! depending on the rooms above it.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Db, StoreResult, new_id, now_ms};

/// How much a learner may choose about a message.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
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
    /// From a school or teacher: invitations, assignments.
    School,
}

impl Category {
    /// Its name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Security => "security",
            Category::Account => "account",
            Category::Progress => "progress",
            Category::Marketing => "marketing",
            Category::School => "school",
        }
    }

    /// Every category, in the order people see them.
    pub const ALL: [Category; 5] = [
        Category::Security,
        Category::Account,
        Category::Progress,
        Category::School,
        Category::Marketing,
    ];

    /// The category named `name`.
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether a learner may turn it off (security notices always go).
    pub fn optional(self) -> bool {
        self != Category::Security
    }

    /// Whether a learner gets it without asking (marketing is opt-in).
    pub fn on_by_default(self) -> bool {
        self != Category::Marketing
    }

    /// Whether it waits for the end of the learner's quiet hours (what is about the account
    /// itself cannot wait: a link expires, a notice warns).
    pub fn keeps_quiet_hours(self) -> bool {
        matches!(
            self,
            Category::Progress | Category::Marketing | Category::School
        )
    }
}

/// The channel built into penpal; every other channel is a notifier plugin, by name.
pub const EMAIL: &str = "email";

/// Which channels carry each category, as the operator chose (`[notify.routes]` in the
/// operator's file); email alone by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    routes: std::collections::BTreeMap<Category, Vec<String>>,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            routes: Category::ALL
                .into_iter()
                .map(|c| (c, vec![EMAIL.to_string()]))
                .collect(),
        }
    }
}

impl Routing {
    /// Email everywhere, except where `routes` names the channels of a category.
    pub fn new(routes: impl IntoIterator<Item = (Category, Vec<String>)>) -> Routing {
        let mut routing = Routing::default();
        routing.routes.extend(routes);
        routing
    }

    /// The channels carrying `category`.
    pub fn channels(&self, category: Category) -> &[String] {
        self.routes.get(&category).map_or(&[], Vec::as_slice)
    }

    /// Every channel some category uses, each once.
    pub fn all_channels(&self) -> std::collections::BTreeSet<&str> {
        self.routes.values().flatten().map(String::as_str).collect()
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

/// SurrealQL statements that enqueue `notice`, one row per channel in `channels` (so each
/// channel retries on its own), and the variables they read — each named with `prefix`, so
/// several notices (and the caller's own variables) share one transaction.
pub fn enqueue(
    notice: &Notice,
    channels: &[String],
    prefix: &str,
) -> (String, Vec<(String, Value)>) {
    let mut sql = String::new();
    let mut vars = Vec::with_capacity(channels.len() * 2);
    let now = now_ms();
    for (i, channel) in channels.iter().enumerate() {
        let id = format!("{prefix}_{i}_id");
        let row = format!("{prefix}_{i}_row");
        sql.push_str(&format!(
            "CREATE type::record('outbox', ${id}) CONTENT ${row};\n"
        ));
        let mut content = json!({
            "template": notice.template,
            "category": notice.category.as_str(),
            "to": notice.to,
            "lang": notice.lang,
            "vars": notice.vars,
            "channel": channel,
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
        vars.push((id, json!(new_id())));
        vars.push((row, content));
    }
    (sql, vars)
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

    /// Adds the enqueueing of `notice` on each channel `routing` gives its category (its
    /// variables prefixed `prefix`).
    pub fn notify(&mut self, notice: &Notice, routing: &Routing, prefix: &str) {
        let (sql, vars) = enqueue(notice, routing.channels(notice.category), prefix);
        self.push(&sql, vars);
    }

    /// Runs everything in one transaction.
    pub async fn commit(self, db: &Db) -> StoreResult<()> {
        let sql = format!("BEGIN TRANSACTION;\n{}COMMIT TRANSACTION;", self.sql);
        db.exec(&sql, Value::Object(self.vars)).await
    }
}
