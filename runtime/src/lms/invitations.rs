//! Invitations to join a school: a random token in a link (only its hash is kept), a role, an
//! optional address it is for, an expiry and a number of uses. Admins invite anyone; teachers
//! invite learners. Accepting one makes the signed-in account a member.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::schools::SchoolRole;
use crate::auth::tokens::{hash_token, random_token};
use crate::store::{Db, StoreResult, new_id, now_ms};

/// An invitation as its school's admins see it (never the token).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Invitation {
    /// Its id (to revoke it).
    pub id: String,
    /// The role it gives.
    pub role: SchoolRole,
    /// The only address that may accept it, if it names one.
    #[serde(default)]
    pub email: Option<String>,
    /// How many accounts may accept it.
    pub max_uses: i64,
    /// How many have.
    pub uses: i64,
    /// When it stops working (ms).
    pub expires_at: i64,
    /// When it was made (ms).
    pub created_at: i64,
}

/// A new invitation: its row and the token for the link (shown once).
pub struct Made {
    /// As stored.
    pub invitation: Invitation,
    /// The secret part of the link.
    pub token: String,
}

/// Makes an invitation to `school` as `role`.
pub async fn create(
    db: &Db,
    school: &str,
    role: SchoolRole,
    email: Option<&str>,
    max_uses: i64,
    days: i64,
    by: &str,
) -> StoreResult<Made> {
    let token = random_token();
    let now = now_ms();
    let invitation = Invitation {
        id: new_id(),
        role,
        email: email.map(str::to_string),
        max_uses,
        uses: 0,
        expires_at: now + days * 86_400_000,
        created_at: now,
    };
    let mut row = json!({
        "school": school, "token_hash": hash_token(&token), "role": role.as_str(),
        "max_uses": max_uses, "uses": 0, "expires_at": invitation.expires_at,
        "created_by": by, "created_at": now,
    });
    if let Some(e) = email {
        row["email"] = json!(e);
    }
    db.exec(
        "CREATE type::record('school_invitation', $id) CONTENT $row",
        json!({"id": invitation.id, "row": row}),
    )
    .await?;
    Ok(Made { invitation, token })
}

/// The invitations of `school`, newest first.
pub async fn list(db: &Db, school: &str) -> StoreResult<Vec<Invitation>> {
    db.rows(
        "SELECT record::id(id) AS id, role, email, max_uses, uses, expires_at, created_at
         FROM school_invitation WHERE school = $s ORDER BY created_at DESC",
        json!({"s": school}),
    )
    .await
}

/// Revokes invitation `id` of `school`; whether there was one.
pub async fn revoke(db: &Db, school: &str, id: &str) -> StoreResult<bool> {
    let gone: Vec<serde_json::Value> = db
        .rows(
            "DELETE type::record('school_invitation', $id) WHERE school = $s RETURN BEFORE",
            json!({"id": id, "s": school}),
        )
        .await?;
    Ok(!gone.is_empty())
}

/// An invitation found by its token, still usable.
#[derive(Debug, Clone, Deserialize)]
pub struct Open {
    /// Its id.
    pub id: String,
    /// The school.
    pub school: String,
    /// The role it gives.
    pub role: SchoolRole,
    /// The only address that may accept it, if any.
    #[serde(default)]
    pub email: Option<String>,
}

/// The usable invitation behind `token`: unexpired, with uses left.
pub async fn open(db: &Db, token: &str) -> StoreResult<Option<Open>> {
    db.one(
        "SELECT record::id(id) AS id, school, role, email FROM school_invitation
         WHERE token_hash = $h AND expires_at > $now AND uses < max_uses LIMIT 1",
        json!({"h": hash_token(token), "now": now_ms()}),
    )
    .await
}

/// Counts one use of invitation `id`; false when its uses ran out meanwhile.
pub async fn spend(db: &Db, id: &str) -> StoreResult<bool> {
    let spent: Vec<serde_json::Value> = db
        .rows(
            "UPDATE type::record('school_invitation', $id) SET uses += 1 WHERE uses < max_uses RETURN AFTER",
            json!({"id": id}),
        )
        .await?;
    Ok(!spent.is_empty())
}
