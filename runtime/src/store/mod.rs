//! Storage: the SurrealDB connection, the schema migrations, and a small typed query helper.
//!
//! SurrealDB runs embedded on `surrealkv://DIR` by default (nothing else to install),
//! `mem://` in tests, and as a remote server (`ws://host:8000`, clustered on TiKV) past one
//! machine. Every room owns its own queries; this module only owns the connection and the
//! schema. Values cross the boundary as JSON: the rooms' serde types are the typed layer,
//! which keeps SurrealDB's own value types out of the rest of the code. Times are Unix
//! milliseconds (`int`) so ordering and cursors are plain integer comparisons.

mod migrations;
pub mod outbox;
pub use outbox::Batch;
pub mod personal;
pub mod sealed;

use serde::de::DeserializeOwned;
use serde_json::Value;
use surrealdb::Surreal;
use surrealdb::engine::any::Any;

pub use migrations::MIGRATIONS;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique index already holds the value (an email taken, a duplicate term).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database refused or failed the query.
    #[error("database error: {0}")]
    Db(String),
    /// A row did not have the shape the code expects (a bug or a half-applied migration).
    #[error("unexpected row shape: {0}")]
    Decode(#[from] serde_json::Error),
}

impl From<surrealdb::Error> for StoreError {
    fn from(e: surrealdb::Error) -> Self {
        let text = e.to_string();
        // A unique index ("already contains") or a keyed record ("already exists").
        if text.contains("already contains") || text.contains("already exists") {
            StoreError::Conflict(text)
        } else {
            StoreError::Db(text)
        }
    }
}

/// Times a conflicting transaction is run again before its error is returned.
const MAX_RETRIES: u32 = 6;

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A connection to the database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Surreal<Any>,
    url: String,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("url", &self.url).finish()
    }
}

impl Db {
    /// Connects to `url` (`mem://`, `surrealkv://DIR`, `ws://HOST:PORT`), selects the
    /// `penpal` namespace and database, signs in when `credentials` are given (remote servers),
    /// and applies every migration not yet recorded.
    pub async fn connect(url: &str, credentials: Option<(&str, &str)>) -> StoreResult<Db> {
        let db = Db::open(url, credentials).await?;
        migrations::apply(&db).await?;
        Ok(db)
    }

    /// A fresh in-memory database with no schema, for migration tests.
    #[cfg(test)]
    async fn connect_unmigrated(url: &str) -> StoreResult<Db> {
        Db::open(url, None).await
    }

    async fn open(url: &str, credentials: Option<(&str, &str)>) -> StoreResult<Db> {
        if let Some(path) = url.strip_prefix("surrealkv://")
            && let Err(e) = std::fs::create_dir_all(path)
        {
            return Err(StoreError::Db(format!("cannot create {path}: {e}")));
        }
        let inner = surrealdb::engine::any::connect(url).await?;
        if let Some((username, password)) = credentials {
            inner
                .signin(surrealdb::opt::auth::Root {
                    username: username.to_string(),
                    password: password.to_string(),
                })
                .await?;
        }
        inner.use_ns("penpal").use_db("penpal").await?;
        Ok(Db {
            inner,
            url: redact_url(url),
        })
    }

    /// The database's address, without credentials (for `/v1/version` and logs).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kind of database in use: `memory`, `surrealkv` or `remote`.
    pub fn kind(&self) -> &'static str {
        if self.url.starts_with("mem") {
            "memory"
        } else if self.url.starts_with("surrealkv") {
            "surrealkv"
        } else {
            "remote"
        }
    }

    /// Runs `sql` (one or more statements) with `vars` (a JSON object) and returns each
    /// statement's result as JSON. Any statement's error fails the whole call.
    pub async fn run(&self, sql: &str, vars: Value) -> StoreResult<Vec<Value>> {
        // Concurrent writers to one record (a turn and a background memory update) conflict
        // under the store's optimistic transactions; the loser is rolled back whole, so
        // running it again is safe.
        let mut attempt = 0;
        loop {
            let started = std::time::Instant::now();
            let result = self.run_once(sql, vars.clone()).await;
            // Statement timings, for profiling (`PENPAL_LOG=penpal::store=debug`).
            tracing::debug!(
                micros = started.elapsed().as_micros() as u64,
                sql = sql.split_whitespace().take(8).collect::<Vec<_>>().join(" "),
                "query"
            );
            let outcome = match &result {
                Ok(_) => "ok",
                Err(StoreError::Db(m)) if m.contains("can be retried") => "conflict",
                Err(_) => "error",
            };
            metrics::histogram!("penpal_db_statement_duration_seconds", "outcome" => outcome)
                .record(started.elapsed().as_secs_f64());
            match result {
                Err(StoreError::Db(m)) if m.contains("can be retried") && attempt < MAX_RETRIES => {
                    attempt += 1;
                    let jitter = rand::random::<u64>() % 5;
                    tokio::time::sleep(std::time::Duration::from_millis(
                        (2u64 << attempt) + jitter,
                    ))
                    .await;
                }
                other => return other,
            }
        }
    }

    async fn run_once(&self, sql: &str, vars: Value) -> StoreResult<Vec<Value>> {
        let mut query = self.inner.query(sql);
        if let Value::Object(map) = vars {
            let mut v = surrealdb::types::Variables::new();
            for (k, val) in map {
                v.insert(k, to_surreal(val));
            }
            query = query.bind(surrealdb::types::Object::from(v));
        }
        let mut response = query.await?;
        let n = response.num_statements();
        let mut out = Vec::with_capacity(n);
        let mut first_error = None;
        for i in 0..n {
            match response.take::<surrealdb::types::Value>(i) {
                Ok(v) => out.push(v.into_json_value()),
                Err(e) => {
                    let e = StoreError::from(e);
                    // When a transaction fails, every statement before the failing one reports
                    // only "not executed due to a failed transaction"; the cause (and whether
                    // it can be retried) is on a later one.
                    let retryable = matches!(&e, StoreError::Db(m) if m.contains("can be retried"));
                    let only_canceled = matches!(&e, StoreError::Db(m) if m.contains("due to a failed transaction"));
                    let have_cause = matches!(&first_error, Some(StoreError::Db(m)) if !m.contains("due to a failed transaction"))
                        || matches!(&first_error, Some(StoreError::Conflict(_)));
                    // The cause wins over the statements it canceled (a `THROW`'s message, a
                    // conflict), so callers can tell why.
                    if retryable || first_error.is_none() || (!only_canceled && !have_cause) {
                        first_error = Some(e);
                    }
                    if retryable {
                        break;
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The rows the *last* statement of `sql` returned, decoded as `T`.
    pub async fn rows<T: DeserializeOwned>(&self, sql: &str, vars: Value) -> StoreResult<Vec<T>> {
        let last = self.run(sql, vars).await?.pop().unwrap_or(Value::Null);
        match last {
            Value::Null => Ok(Vec::new()),
            Value::Array(rows) => rows
                .into_iter()
                .map(|r| serde_json::from_value(r).map_err(StoreError::from))
                .collect(),
            one => Ok(vec![serde_json::from_value(one)?]),
        }
    }

    /// The first row the last statement of `sql` returned, if any.
    pub async fn one<T: DeserializeOwned>(&self, sql: &str, vars: Value) -> StoreResult<Option<T>> {
        Ok(self.rows(sql, vars).await?.into_iter().next())
    }

    /// Runs `sql` for its effect.
    pub async fn exec(&self, sql: &str, vars: Value) -> StoreResult<()> {
        self.run(sql, vars).await.map(|_| ())
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        self.run("RETURN 1", Value::Null).await.is_ok()
    }
}

/// JSON to a SurrealDB value, with `null` as NONE: an absent optional field, which is what
/// `option<T>` fields accept (SurrealDB's NULL is a value of its own).
fn to_surreal(v: Value) -> surrealdb::types::Value {
    use surrealdb::types::{Array, Number, Object, Value as S};
    match v {
        Value::Null => S::None,
        Value::Bool(b) => S::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => S::Number(Number::Int(i)),
            None => S::Number(Number::Float(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) => S::String(s),
        Value::Array(a) => S::Array(Array::from(
            a.into_iter().map(to_surreal).collect::<Vec<_>>(),
        )),
        Value::Object(o) => {
            let mut obj = Object::new();
            for (k, v) in o {
                obj.insert(k, to_surreal(v));
            }
            S::Object(obj)
        }
    }
}

/// `url` with any `user:password@` removed.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new identifier: 12 hex digits of milliseconds then 20 of randomness, so identifiers sort
/// by creation time (which cursor pagination relies on) and cannot be guessed.
pub fn new_id() -> String {
    let r: u128 = rand::random::<u128>() & ((1u128 << 80) - 1);
    format!("{:012x}{:020x}", now_ms() as u64 & 0xffff_ffff_ffff, r)
}

/// Formats Unix milliseconds as an RFC 3339 UTC timestamp, to the second (for exports).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_second(ms.div_euclid(1000))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// The UTC calendar date of `day` days after 1970-01-01, as `YYYY-MM-DD`.
pub fn utc_date(day: i64) -> String {
    jiff::Timestamp::from_second(day.saturating_mul(86_400))
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
        .unwrap_or_else(|_| "1970-01-01".to_string())
}

/// `ms` as a UTC minute, `YYYY-MM-DD HH:MM`, for messages to people.
pub fn utc_minute(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ids() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_600_999), "2026-01-01T00:00:00Z");
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(20_454), "2026-01-01");
        assert_eq!(utc_date(-1), "1969-12-31");
        assert_eq!(utc_date(11_016), "2000-02-29");
        let a = new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id();
        assert_eq!(a.len(), 32);
        assert!(a < b, "ids sort by time");
        assert_eq!(redact_url("ws://root:pw@db:8000"), "ws://db:8000");
    }

    /// A turn's transaction and a background update of the same row conflict; both must land,
    /// however the store reports the conflict.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conflicting_writers_to_one_record_all_land() {
        let db = Db::connect_unmigrated("mem://").await.unwrap();
        db.exec("CREATE r:1 CONTENT { turns: 0, summaries: 0 }", Value::Null)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for k in 0..8 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    if k % 2 == 0 {
                        db.exec(
                            "BEGIN TRANSACTION; CREATE type::record('m', [$k, $i]) CONTENT { k: $k };
                             UPDATE r:1 SET turns += 1; COMMIT TRANSACTION;",
                            serde_json::json!({"k": k, "i": i}),
                        )
                        .await
                    } else {
                        db.exec("UPDATE r:1 SET summaries += 1", Value::Null).await
                    }
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let row: Option<Value> = db
            .one("SELECT turns, summaries FROM r:1", Value::Null)
            .await
            .unwrap();
        assert_eq!(row, Some(serde_json::json!({"turns": 40, "summaries": 40})));
    }
}
