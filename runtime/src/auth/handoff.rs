//! Arriving from elsewhere: accounts made for people a school's LMS (or identity provider)
//! vouches for, and one-time **hand-off codes** that turn such an arrival into a browser
//! session on penpal's own origin. A code is random, stored hashed, good for one use within
//! [`CODE_TTL_MS`]; the page it lands on exchanges it at `POST /v1/auth/web/handoff`.

use serde_json::json;

use super::tokens::{hash_token, random_token};
use crate::store::{Db, StoreResult, new_id, now_ms};

/// How long a hand-off code can be exchanged.
pub const CODE_TTL_MS: i64 = 120_000;

/// Makes an account for someone vouched for elsewhere: `email` when it is given and no
/// account has it yet (an existing account is never taken over by a claim), a placeholder
/// otherwise. Its password is random and unknown, so only the vouching party — or a password
/// reset to a real address — signs them in. Its id.
pub async fn external_account(db: &Db, email: Option<&str>, name: &str) -> anyhow::Result<String> {
    let id = new_id();
    let taken = match email {
        Some(e) => db
            .one::<String>(
                "SELECT VALUE record::id(id) FROM user WHERE email = $e LIMIT 1",
                json!({"e": e}),
            )
            .await?
            .is_some(),
        None => true,
    };
    let email = match email {
        Some(e) if !taken => e.to_string(),
        _ => format!("{id}@users.penpal.invalid"),
    };
    let hash = super::passwords::hash(random_token()).await?;
    let now = now_ms();
    let name: String = name.chars().take(60).collect();
    db.exec(
        "CREATE type::record('user', $id) CONTENT { email: $email, password_hash: $hash, role: 'learner', created_at: $now,
             password_changed_at: $now, time_zone: 'UTC', profile: { display_name: $name, interface_language: 'en' } }",
        json!({"id": id, "email": email, "hash": hash, "now": now, "name": name}),
    )
    .await?;
    Ok(id)
}

/// A one-time code signing `user` in; the page it opens may be framed by `frame` (the origin
/// of the LMS that launched them), as LMSs show tools inside their own pages.
pub async fn issue_code(db: &Db, user: &str, frame: Option<&str>) -> StoreResult<String> {
    let code = random_token();
    db.exec(
        "CREATE type::record('handoff_code', $id) CONTENT { user: $u, frame: $frame ?? NONE, expires_at: $exp }",
        json!({"id": hash_token(&code), "u": user, "frame": frame, "exp": now_ms() + CODE_TTL_MS}),
    )
    .await?;
    Ok(code)
}

/// The origin that may frame the page live code `code` opens, if any (the code stays).
pub async fn frame_of(db: &Db, code: &str) -> StoreResult<Option<String>> {
    db.one(
        "SELECT VALUE frame FROM type::record('handoff_code', $id) WHERE expires_at > $now AND frame != NONE",
        json!({"id": hash_token(code), "now": now_ms()}),
    )
    .await
}

/// Removes expired codes (a launch that never reached its landing leaves one).
pub async fn sweep(db: &Db) -> StoreResult<()> {
    db.exec(
        "DELETE handoff_code WHERE expires_at <= $now",
        json!({"now": now_ms()}),
    )
    .await
}

/// The account `code` signs in, using it up; none when it is unknown, used or expired.
pub async fn redeem(db: &Db, code: &str) -> StoreResult<Option<String>> {
    db.one(
        "DELETE type::record('handoff_code', $id) WHERE expires_at > $now RETURN BEFORE",
        json!({"id": hash_token(code), "now": now_ms()}),
    )
    .await
    .map(|row: Option<serde_json::Value>| {
        row.and_then(|r| r.get("user").and_then(|u| u.as_str()).map(str::to_string))
    })
}
