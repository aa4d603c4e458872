//! Roles granted by the operator: `penpal admin grant-role EMAIL ROLE` and `revoke-role`.
//!
//! A role is carried in access tokens, so a change ends every session of the account: the
//! next sign-in carries the new role, and a token with the old one stops working within
//! [`super::tokens::SESSION_RECHECK`] on every node.

use serde::Deserialize;
use serde_json::json;

use super::Role;
use crate::store::{Db, StoreError};

/// Why a role change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// No account has this email.
    #[error("no account with the email {0}: the person signs up first")]
    NoAccount(String),
    /// Revoking a role the account does not have.
    #[error("{email} is a {has}, not a {asked}")]
    NotHeld {
        /// The account.
        email: String,
        /// The role it has.
        has: Role,
        /// The role asked to revoke.
        asked: Role,
    },
    /// Learner is the role every account falls back to; it cannot be revoked.
    #[error("every account is at least a learner: revoke the role it has instead")]
    Learner,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Deserialize)]
struct Row {
    id: String,
    role: Role,
}

/// Gives `email`'s account `role` (an account has one role) and ends its sessions. Returns the
/// role it had.
pub async fn grant_role(db: &Db, email: &str, role: Role) -> Result<Role, RoleError> {
    let row = account(db, email).await?;
    set(db, &row.id, role).await?;
    Ok(row.role)
}

/// Takes `role` from `email`'s account, which becomes a learner, and ends its sessions.
pub async fn revoke_role(db: &Db, email: &str, role: Role) -> Result<(), RoleError> {
    if role == Role::Learner {
        return Err(RoleError::Learner);
    }
    let row = account(db, email).await?;
    if row.role != role {
        return Err(RoleError::NotHeld {
            email: email.to_string(),
            has: row.role,
            asked: role,
        });
    }
    set(db, &row.id, Role::Learner).await
}

async fn account(db: &Db, email: &str) -> Result<Row, RoleError> {
    let email = email.trim().to_lowercase();
    db.one(
        "SELECT record::id(id) AS id, role FROM user WHERE email = $email",
        json!({"email": email}),
    )
    .await?
    .ok_or(RoleError::NoAccount(email))
}

async fn set(db: &Db, user: &str, role: Role) -> Result<(), RoleError> {
    db.exec(
        "BEGIN TRANSACTION;
         UPDATE type::record('user', $u) SET role = $role;
         UPDATE refresh_token SET revoked = true WHERE user = $u;
         COMMIT TRANSACTION;",
        json!({"u": user, "role": role}),
    )
    .await?;
    tracing::info!(
        user,
        ?role,
        "role changed; the account's sessions are ended"
    );
    Ok(())
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Learner => "learner",
            Role::Teacher => "teacher",
            Role::SchoolAdmin => "school-admin",
            Role::Operator => "operator",
        })
    }
}
