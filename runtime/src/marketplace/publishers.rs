//! Publishers: who a package's name belongs to, and the ed25519 keys they sign with.
//!
//! Any account with a verified address may become a publisher (one per account), whatever its
//! role: a teacher can publish the tutor they wrote for their class. A key is registered by its
//! public half; rotating is registering the new key and revoking the old. A revoked key stays
//! on record, so what it signed can still be named, but it signs nothing new.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::signature::PublicKey;
use crate::store::{Db, StoreError, now_ms};

/// Unrevoked keys a publisher may hold at once.
pub const MAX_KEYS: usize = 10;

/// Why a publisher change was refused; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PublisherError {
    /// The address is not verified.
    #[error("verify your email address first: publishers are reachable by mail")]
    Unverified,
    /// The account publishes already.
    #[error("this account already publishes as `{0}`")]
    AlreadyPublisher(String),
    /// Another publisher has the slug.
    #[error("the publisher name `{0}` is taken: choose another")]
    SlugTaken(String),
    /// The key is registered already (here or to another publisher).
    #[error("this key is registered already: generate a new one with `penpal key generate`")]
    KeyTaken,
    /// Too many unrevoked keys.
    #[error("a publisher holds at most {MAX_KEYS} keys: revoke one you no longer sign with")]
    TooManyKeys,
    /// No such key for this publisher.
    #[error("key not found")]
    NoSuchKey,
    /// Too many publish tokens.
    #[error("a publisher holds at most {MAX_TOKENS} publish tokens: revoke one you no longer use")]
    TooManyTokens,
    /// No such token for this publisher.
    #[error("token not found")]
    NoSuchToken,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A publisher as stored.
#[derive(Debug, Clone, Deserialize)]
pub struct PublisherRow {
    /// The publisher's name in URLs and manifests.
    pub slug: String,
    /// The name people see.
    pub name: String,
    /// The account that publishes.
    pub owner: String,
}

/// A publisher and its keys, as anyone may see them (a remote registry checks signatures
/// against these keys).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Publisher {
    /// The publisher's name in URLs and manifests (`publisher = "…"`).
    pub slug: String,
    /// The name people see.
    pub name: String,
    /// When it signed up (ms).
    pub created_at: i64,
    /// Its keys, newest first, revoked ones included.
    pub keys: Vec<KeyView>,
    /// The names of its packages here, withdrawn ones included (the catalogue lists only what
    /// installs). Absent from registries older than this field.
    #[serde(default)]
    pub packages: Vec<String>,
}

/// A publisher's signing key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// What `penpal-plugin.sig` names it by.
    pub fingerprint: String,
    /// The public key, base64 of its 32 bytes.
    pub public_key: String,
    /// The publisher's note for it ("laptop", "CI").
    pub label: String,
    /// When it was registered (ms).
    pub created_at: i64,
    /// When it was revoked (ms): what it signed no longer installs.
    pub revoked_at: Option<i64>,
}

/// Whether `s` is a publisher slug: 2–39 of `a-z`, `0-9` and `-`, starting with a letter, no
/// `--` and no trailing `-`.
pub fn valid_slug(s: &str) -> bool {
    (2..=39).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Makes `owner`'s account the publisher `slug`.
pub async fn create(
    db: &Db,
    owner: &str,
    slug: &str,
    name: &str,
) -> Result<Publisher, PublisherError> {
    let verified: Option<Option<i64>> = db
        .one(
            "SELECT VALUE email_verified_at FROM type::record('user', $u);",
            json!({"u": owner}),
        )
        .await?;
    if verified.flatten().is_none() {
        return Err(PublisherError::Unverified);
    }
    if let Some(mine) = of_owner(db, owner).await? {
        return Err(PublisherError::AlreadyPublisher(mine.slug));
    }
    let now = now_ms();
    let created = db
        .exec(
            "CREATE type::record('publisher', $slug) CONTENT { owner: $owner, name: $name, created_at: $now };",
            json!({"slug": slug, "owner": owner, "name": name, "now": now}),
        )
        .await;
    match created {
        Ok(()) => {}
        Err(StoreError::Conflict(m)) if m.contains("publisher_owner") => {
            return Err(PublisherError::AlreadyPublisher(
                of_owner(db, owner)
                    .await?
                    .map(|p| p.slug)
                    .unwrap_or_default(),
            ));
        }
        Err(StoreError::Conflict(_)) => return Err(PublisherError::SlugTaken(slug.into())),
        Err(e) => return Err(e.into()),
    }
    Ok(Publisher {
        slug: slug.into(),
        name: name.into(),
        created_at: now,
        keys: Vec::new(),
        packages: Vec::new(),
    })
}

/// The publisher `owner`'s account is, if any.
pub async fn of_owner(db: &Db, owner: &str) -> Result<Option<PublisherRow>, StoreError> {
    db.one(
        "SELECT record::id(id) AS slug, name, owner FROM publisher WHERE owner = $owner;",
        json!({"owner": owner}),
    )
    .await
}

/// The publisher `slug` and its keys.
pub async fn get(db: &Db, slug: &str) -> Result<Option<Publisher>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
        created_at: i64,
    }
    let Some(row) = db
        .one::<Row>(
            "SELECT name, created_at FROM type::record('publisher', $slug);",
            json!({"slug": slug}),
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Publisher {
        slug: slug.into(),
        name: row.name,
        created_at: row.created_at,
        keys: keys(db, slug).await?,
        packages: packages(db, slug).await?,
    }))
}

/// The names of the packages `slug` published here (not the ones mirrored from elsewhere).
async fn packages(db: &Db, slug: &str) -> Result<Vec<String>, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
    }
    let rows: Vec<Row> = db
        .rows(
            "SELECT record::id(id) AS name FROM package
             WHERE publisher = $slug AND source = NONE ORDER BY name;",
            json!({"slug": slug}),
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// `slug`'s keys, newest first.
pub async fn keys(db: &Db, slug: &str) -> Result<Vec<KeyView>, StoreError> {
    db.rows(
        "SELECT record::id(id) AS fingerprint, public_key, label, created_at, revoked_at
         FROM publisher_key WHERE publisher = $slug ORDER BY created_at DESC;",
        json!({"slug": slug}),
    )
    .await
}

/// Registers `key` for `slug`.
pub async fn add_key(
    db: &Db,
    slug: &str,
    key: &PublicKey,
    label: &str,
) -> Result<KeyView, PublisherError> {
    let active = keys(db, slug)
        .await?
        .iter()
        .filter(|k| k.revoked_at.is_none())
        .count();
    if active >= MAX_KEYS {
        return Err(PublisherError::TooManyKeys);
    }
    let view = KeyView {
        fingerprint: key.fingerprint(),
        public_key: key.to_base64(),
        label: label.into(),
        created_at: now_ms(),
        revoked_at: None,
    };
    let created = db
        .exec(
            "CREATE type::record('publisher_key', $fp) CONTENT { publisher: $slug, public_key: $pk, label: $label, created_at: $now };",
            json!({"fp": view.fingerprint, "slug": slug, "pk": view.public_key, "label": label, "now": view.created_at}),
        )
        .await;
    match created {
        Ok(()) => Ok(view),
        Err(StoreError::Conflict(_)) => Err(PublisherError::KeyTaken),
        Err(e) => Err(e.into()),
    }
}

/// Revokes `slug`'s key `fingerprint` (again is a no-op).
pub async fn revoke_key(db: &Db, slug: &str, fingerprint: &str) -> Result<(), PublisherError> {
    let revoked: Vec<serde_json::Value> = db
        .rows(
            "UPDATE type::record('publisher_key', $fp) SET revoked_at = revoked_at ?? $now
             WHERE publisher = $slug RETURN NONE;
             SELECT VALUE id FROM type::record('publisher_key', $fp) WHERE publisher = $slug;",
            json!({"fp": fingerprint, "slug": slug, "now": now_ms()}),
        )
        .await?;
    if revoked.is_empty() {
        return Err(PublisherError::NoSuchKey);
    }
    tracing::info!(publisher = %slug, key = %fingerprint, "publisher key revoked");
    Ok(())
}

/// Publish tokens a publisher may hold.
pub const MAX_TOKENS: usize = 20;

/// What every publish token starts with, so a leaked one is recognisable (and scannable).
pub const TOKEN_PREFIX: &str = "pp_";

/// A publish token, as its publisher sees it (the token itself only once, when made).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Its id.
    pub id: String,
    /// The publisher's note for it ("GitHub Actions").
    pub label: String,
    /// When it was made (ms).
    pub created_at: i64,
    /// When it last published (ms).
    pub last_used_at: Option<i64>,
    /// The token: shown once, when made. Send it as `Authorization: Bearer …` to publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Makes a publish token for `slug`.
pub async fn add_token(db: &Db, slug: &str, label: &str) -> Result<TokenView, PublisherError> {
    if tokens(db, slug).await?.len() >= MAX_TOKENS {
        return Err(PublisherError::TooManyTokens);
    }
    let token = format!("{TOKEN_PREFIX}{}", crate::auth::tokens::random_token());
    let view = TokenView {
        id: crate::store::new_id(),
        label: label.into(),
        created_at: now_ms(),
        last_used_at: None,
        token: Some(token.clone()),
    };
    db.exec(
        "CREATE type::record('publish_token', $id) CONTENT { publisher: $slug, hash: $hash, label: $label, created_at: $now };",
        json!({"id": view.id, "slug": slug, "hash": crate::auth::tokens::hash_token(&token),
               "label": label, "now": view.created_at}),
    )
    .await?;
    tracing::info!(publisher = %slug, token = %view.id, "publish token made");
    Ok(view)
}

/// `slug`'s publish tokens, newest first, without the tokens.
pub async fn tokens(db: &Db, slug: &str) -> Result<Vec<TokenView>, StoreError> {
    db.rows(
        "SELECT record::id(id) AS id, label, created_at, last_used_at FROM publish_token
         WHERE publisher = $slug ORDER BY created_at DESC;",
        json!({"slug": slug}),
    )
    .await
}

/// Revokes `slug`'s token `id`.
pub async fn revoke_token(db: &Db, slug: &str, id: &str) -> Result<(), PublisherError> {
    let gone: Vec<serde_json::Value> = db
        .rows(
            "DELETE type::record('publish_token', $id) WHERE publisher = $slug RETURN BEFORE;",
            json!({"id": id, "slug": slug}),
        )
        .await?;
    if gone.is_empty() {
        return Err(PublisherError::NoSuchToken);
    }
    tracing::info!(publisher = %slug, token = %id, "publish token revoked");
    Ok(())
}

/// The publisher a publish token belongs to, noting its use.
pub async fn by_token(db: &Db, token: &str) -> Result<Option<PublisherRow>, StoreError> {
    let slug: Option<String> = db
        .one(
            "UPDATE publish_token SET last_used_at = $now WHERE hash = $hash RETURN VALUE publisher;",
            json!({"hash": crate::auth::tokens::hash_token(token), "now": now_ms()}),
        )
        .await?;
    let Some(slug) = slug else {
        return Ok(None);
    };
    db.one(
        "SELECT record::id(id) AS slug, name, owner FROM type::record('publisher', $slug);",
        json!({"slug": slug}),
    )
    .await
}

/// What the registry knows of the key a package names.
pub enum Signer {
    /// Registered to this publisher and not revoked.
    Active(PublicKey),
    /// Registered to this publisher, revoked.
    Revoked,
    /// Not registered to this publisher.
    Unknown,
}

/// The key `fingerprint` as `slug`'s signer.
pub async fn signer(db: &Db, slug: &str, fingerprint: &str) -> Result<Signer, StoreError> {
    #[derive(Deserialize)]
    struct Row {
        publisher: String,
        public_key: String,
        revoked_at: Option<i64>,
    }
    let row: Option<Row> = db
        .one(
            "SELECT publisher, public_key, revoked_at FROM type::record('publisher_key', $fp);",
            json!({"fp": fingerprint}),
        )
        .await?;
    Ok(match row {
        Some(r) if r.publisher == slug && r.revoked_at.is_some() => Signer::Revoked,
        Some(r) if r.publisher == slug => match PublicKey::parse(&r.public_key) {
            Ok(k) => Signer::Active(k),
            Err(_) => Signer::Unknown,
        },
        _ => Signer::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::valid_slug;

    #[test]
    fn slugs_are_plain_lower_case_names() {
        for ok in ["ada", "ada-lovelace", "tutors4u"] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in ["a", "Ada", "4ada", "ada-", "ada--b", "ada_b", "ada b", ""] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
