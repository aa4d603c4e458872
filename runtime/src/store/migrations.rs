//! Versioned schema migrations, applied in order at start-up and recorded in `migration`.
//!
//! A migration is never edited once released: a change to the schema is a new entry. Each one
//! runs in a transaction together with its record, so a crash leaves it either applied and
//! recorded or neither.

use serde::Deserialize;
use serde_json::json;

use super::{Db, StoreError, StoreResult, now_ms};

/// Every migration: (version, name, SurrealQL).
pub const MIGRATIONS: &[(u32, &str, &str)] = &[(1, "learners", V1)];

const V1: &str = r#"
DEFINE TABLE user SCHEMAFULL;
DEFINE FIELD email ON user TYPE string ASSERT string::is_email($value);
DEFINE FIELD password_hash ON user TYPE string;
DEFINE FIELD role ON user TYPE string ASSERT $value INSIDE ['learner', 'teacher', 'school_admin', 'operator'];
DEFINE FIELD created_at ON user TYPE int;
DEFINE FIELD password_changed_at ON user TYPE int;
DEFINE FIELD profile ON user TYPE object FLEXIBLE;
DEFINE INDEX user_email ON user FIELDS email UNIQUE;

DEFINE TABLE refresh_token SCHEMAFULL;
DEFINE FIELD user ON refresh_token TYPE string;
DEFINE FIELD family ON refresh_token TYPE string;
DEFINE FIELD created_at ON refresh_token TYPE int;
DEFINE FIELD expires_at ON refresh_token TYPE int;
DEFINE FIELD used_at ON refresh_token TYPE option<int>;
DEFINE FIELD revoked ON refresh_token TYPE bool;
DEFINE INDEX refresh_family ON refresh_token FIELDS family;
DEFINE INDEX refresh_user ON refresh_token FIELDS user;

DEFINE TABLE live_ticket SCHEMAFULL;
DEFINE FIELD user ON live_ticket TYPE string;
DEFINE FIELD conversation ON live_ticket TYPE string;
DEFINE FIELD expires_at ON live_ticket TYPE int;

DEFINE TABLE conversation SCHEMAFULL;
DEFINE FIELD user ON conversation TYPE string;
DEFINE FIELD title ON conversation TYPE string ASSERT string::len($value) <= 200;
DEFINE FIELD personality ON conversation TYPE string;
DEFINE FIELD mode ON conversation TYPE string ASSERT $value INSIDE ['tutor', 'conversation', 'role-play'];
DEFINE FIELD language ON conversation TYPE string;
DEFINE FIELD scenario ON conversation TYPE option<string>;
DEFINE FIELD topic ON conversation TYPE option<string>;
DEFINE FIELD archived ON conversation TYPE bool;
DEFINE FIELD created_at ON conversation TYPE int;
DEFINE FIELD updated_at ON conversation TYPE int;
DEFINE FIELD last_seq ON conversation TYPE int;
DEFINE FIELD turns ON conversation TYPE int;
DEFINE FIELD summary ON conversation TYPE option<string>;
DEFINE FIELD summary_upto ON conversation TYPE int;
DEFINE FIELD pinned ON conversation TYPE array<string>;
DEFINE INDEX conversation_user ON conversation FIELDS user, updated_at;

DEFINE TABLE message SCHEMAFULL;
DEFINE FIELD conversation ON message TYPE string;
DEFINE FIELD user ON message TYPE string;
DEFINE FIELD seq ON message TYPE int;
DEFINE FIELD role ON message TYPE string ASSERT $value INSIDE ['learner', 'tutor'];
DEFINE FIELD text ON message TYPE string;
DEFINE FIELD created_at ON message TYPE int;
DEFINE FIELD status ON message TYPE string ASSERT $value INSIDE ['pending', 'answered', 'failed', 'ok'];
DEFINE FIELD corrections ON message TYPE array<object> FLEXIBLE;
DEFINE FIELD vocabulary ON message TYPE array<object> FLEXIBLE;
DEFINE FIELD debrief ON message TYPE option<string>;
DEFINE FIELD error ON message TYPE option<string>;
DEFINE INDEX message_seq ON message FIELDS conversation, seq UNIQUE;
DEFINE INDEX message_user ON message FIELDS user;

DEFINE TABLE vocab SCHEMAFULL;
DEFINE FIELD user ON vocab TYPE string;
DEFINE FIELD language ON vocab TYPE string;
DEFINE FIELD term ON vocab TYPE string;
DEFINE FIELD translation ON vocab TYPE string;
DEFINE FIELD example ON vocab TYPE option<string>;
DEFINE FIELD conversation ON vocab TYPE option<string>;
DEFINE FIELD added_at ON vocab TYPE int;
DEFINE FIELD due_at ON vocab TYPE int;
DEFINE FIELD interval_days ON vocab TYPE float;
DEFINE FIELD ease ON vocab TYPE float;
DEFINE FIELD reps ON vocab TYPE int;
DEFINE FIELD lapses ON vocab TYPE int;
DEFINE FIELD last_review ON vocab TYPE option<int>;
DEFINE INDEX vocab_term ON vocab FIELDS user, language, term UNIQUE;
DEFINE INDEX vocab_due ON vocab FIELDS user, due_at;

DEFINE TABLE turn_stat SCHEMAFULL;
DEFINE FIELD user ON turn_stat TYPE string;
DEFINE FIELD conversation ON turn_stat TYPE string;
DEFINE FIELD language ON turn_stat TYPE string;
DEFINE FIELD at ON turn_stat TYPE int;
DEFINE FIELD words ON turn_stat TYPE int;
DEFINE FIELD errors ON turn_stat TYPE int;
DEFINE FIELD categories ON turn_stat TYPE object FLEXIBLE;
DEFINE FIELD observed ON turn_stat TYPE option<string>;
DEFINE FIELD confidence ON turn_stat TYPE option<float>;
DEFINE INDEX turn_stat_user ON turn_stat FIELDS user, at;

DEFINE TABLE usage SCHEMAFULL;
DEFINE FIELD user ON usage TYPE option<string>;
DEFINE FIELD conversation ON usage TYPE option<string>;
DEFINE FIELD at ON usage TYPE int;
DEFINE FIELD model ON usage TYPE string;
DEFINE FIELD purpose ON usage TYPE string;
DEFINE FIELD prompt_tokens ON usage TYPE int;
DEFINE FIELD completion_tokens ON usage TYPE int;
DEFINE FIELD cost_micros ON usage TYPE int;
DEFINE INDEX usage_user ON usage FIELDS user;
DEFINE INDEX usage_conversation ON usage FIELDS conversation;

DEFINE TABLE plugin_kv SCHEMAFULL;
DEFINE FIELD ns ON plugin_kv TYPE string;
DEFINE FIELD key ON plugin_kv TYPE string;
DEFINE FIELD value ON plugin_kv TYPE string;
DEFINE INDEX plugin_kv_key ON plugin_kv FIELDS ns, key UNIQUE;
"#;

#[derive(Deserialize)]
struct Applied {
    version: u32,
}

/// Applies every migration newer than the newest recorded one.
pub(super) async fn apply(db: &Db) -> StoreResult<()> {
    db.exec(
        "DEFINE TABLE IF NOT EXISTS migration SCHEMAFULL;
         DEFINE FIELD IF NOT EXISTS version ON migration TYPE int;
         DEFINE FIELD IF NOT EXISTS name ON migration TYPE string;
         DEFINE FIELD IF NOT EXISTS applied_at ON migration TYPE int;
         DEFINE INDEX IF NOT EXISTS migration_version ON migration FIELDS version UNIQUE;",
        json!({}),
    )
    .await?;
    let applied: Vec<Applied> = db
        .rows("SELECT version FROM migration ORDER BY version", json!({}))
        .await?;
    let newest = applied.iter().map(|a| a.version).max().unwrap_or(0);
    if let Some(&(latest, _, _)) = MIGRATIONS.last()
        && newest > latest
    {
        return Err(StoreError::Db(format!(
            "the database is at schema version {newest}, newer than this penpal knows ({latest}): \
             upgrade penpal before pointing it at this database"
        )));
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > newest) {
        let script = format!(
            "BEGIN TRANSACTION;\n{sql}\nCREATE migration CONTENT {{ version: $version, name: $name, applied_at: $at }};\nCOMMIT TRANSACTION;"
        );
        db.exec(
            &script,
            json!({"version": version, "name": name, "at": now_ms()}),
        )
        .await
        .map_err(|e| StoreError::Db(format!("migration {version} ({name}) failed: {e}")))?;
        tracing::info!(version, name, "schema migration applied");
    }
    Ok(())
}
