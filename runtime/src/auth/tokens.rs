//! Access tokens (HS256 JWTs) and refresh tokens (opaque, hashed at rest, rotated on use).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::Role;
use crate::http::ApiError;
use crate::store::{Db, StoreResult, new_id, now_ms};

const ISSUER: &str = "penpal";
const AUDIENCE: &str = "penpal-api";

/// What an access token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// Their role.
    pub role: Role,
    /// The session's refresh-token family.
    pub fam: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not valid before (Unix seconds); penpal does not set it, but honours it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Always `penpal`.
    pub iss: String,
    /// Always `penpal-api`.
    pub aud: String,
}

/// What a successful sign-in or refresh answers.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tokens {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// Exchange at `POST /v1/auth/refresh` for new tokens; works once.
    pub refresh_token: String,
    /// The user's id.
    pub user_id: String,
}

/// How long this node trusts what it last read of a session (family) in the database. A
/// revocation on another node, or before a restart, takes effect within this time; one on
/// this node takes effect at once.
pub const SESSION_RECHECK: Duration = Duration::from_secs(5);
/// Clock skew allowed between nodes, in seconds.
const LEEWAY: u64 = 5;

/// Signing keys and lifetimes, what this node last read of each session's state, and the
/// channel on which revocations reach open sockets.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token.
    pub refresh_ttl: Duration,
    sessions: Mutex<HashMap<String, (bool, Instant)>>,
    ended: broadcast::Sender<String>,
}

impl Keys {
    /// Keys for the HMAC `secret`.
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Keys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            refresh_ttl,
            sessions: Mutex::new(HashMap::new()),
            ended: broadcast::channel(256).0,
        }
    }

    /// A signed access token for `user` in session `family`.
    pub fn access(&self, user: &str, role: Role, family: &str) -> anyhow::Result<String> {
        let now = now_ms() / 1000;
        let claims = Claims {
            sub: user.to_string(),
            role,
            fam: family.to_string(),
            iat: now,
            nbf: None,
            exp: now + self.access_ttl.as_secs() as i64,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a validly signed, current access token: any other algorithm (including
    /// `none`), a bad signature, a wrong issuer or audience, an expired token, one not valid
    /// yet (`nbf`) or issued in the future (`iat`) is refused. Whether its session still
    /// stands is [`Keys::authenticate`]'s question.
    pub fn verify_access(&self, token: &str) -> Result<Claims, ApiError> {
        let invalid = || ApiError::Unauthorized {
            code: "invalid_token",
            message: "the access token is not valid".into(),
        };
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::Unauthorized {
                    code: "token_expired",
                    message: "the access token has expired: refresh it".into(),
                },
                _ => invalid(),
            })?;
        // jsonwebtoken checks `exp` and `nbf`, not `iat`: a token "issued" later than now was
        // not issued by this server's clock.
        if data.claims.iat > now_ms() / 1000 + LEEWAY as i64 {
            return Err(invalid());
        }
        if self.cached(&data.claims.fam) == Some(false) {
            return Err(session_ended());
        }
        Ok(data.claims)
    }

    /// The claims of a valid access token whose session has not ended, checked against the
    /// stored sessions (read at most every [`SESSION_RECHECK`] per session), so a logout or
    /// password change holds across restarts and nodes.
    pub async fn authenticate(&self, db: &Db, token: &str) -> Result<Claims, ApiError> {
        let claims = self.verify_access(token)?;
        if self.session_active(db, &claims.fam).await? {
            Ok(claims)
        } else {
            Err(session_ended())
        }
    }

    /// Whether session `family` still stands: it has a refresh token that is not revoked (an
    /// account's deletion removes them all).
    pub async fn session_active(&self, db: &Db, family: &str) -> StoreResult<bool> {
        if let Some(active) = self.cached(family) {
            return Ok(active);
        }
        #[derive(Deserialize)]
        struct N {
            n: usize,
        }
        let live: Option<N> = db
            .one(
                "SELECT count() AS n FROM refresh_token WHERE family = $family AND revoked = false GROUP ALL",
                json!({"family": family}),
            )
            .await?;
        let active = live.is_some_and(|n| n.n > 0);
        if active {
            self.remember(family, true);
        } else {
            // Ended elsewhere (another node, before a restart): as if ended here.
            self.revoked_here(family);
        }
        Ok(active)
    }

    /// Sessions ending on this node, as they end: open sockets listen to close themselves.
    pub fn ended_sessions(&self) -> broadcast::Receiver<String> {
        self.ended.subscribe()
    }

    /// Notes that `family` was revoked here: its access tokens stop working at once on this
    /// node, and its sockets close.
    fn revoked_here(&self, family: &str) {
        self.remember(family, false);
        let _ = self.ended.send(family.to_string());
    }

    fn cached(&self, family: &str) -> Option<bool> {
        let map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(family) {
            // A revocation is final; only a session found standing is read again.
            Some((false, _)) => Some(false),
            Some((true, at)) if at.elapsed() < SESSION_RECHECK => Some(true),
            _ => None,
        }
    }

    fn remember(&self, family: &str, active: bool) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            // Ended sessions older than an access token's life need no memory: their tokens
            // have expired anyway.
            let keep = self.access_ttl + SESSION_RECHECK;
            map.retain(|_, (_, at)| at.elapsed() < keep);
        }
        map.insert(family.to_string(), (active, Instant::now()));
    }
}

/// The error for a token whose session has ended.
pub fn session_ended() -> ApiError {
    ApiError::Unauthorized {
        code: "session_revoked",
        message: "this session has ended: sign in again".into(),
    }
}

/// SHA-256 of a token, hex: what the database keeps instead of the token.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token (32 bytes, URL-safe base64).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Debug, Deserialize)]
struct RefreshRow {
    user: String,
    family: String,
    expires_at: i64,
    used_at: Option<i64>,
    revoked: bool,
}

/// Why a refresh token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// Never issued, or its account is gone.
    Unknown,
    /// Expired or revoked.
    Ended,
    /// Already used: the family is now revoked.
    Reused,
}

/// Issues a new session (or continues `family`) for `user`: an access token and a refresh
/// token whose hash is stored.
pub async fn issue(
    db: &Db,
    keys: &Keys,
    user: &str,
    role: Role,
    family: Option<&str>,
) -> anyhow::Result<Tokens> {
    let family = family.map(str::to_string).unwrap_or_else(new_id);
    let refresh = random_token();
    let now = now_ms();
    db.exec(
        "CREATE type::record('refresh_token', $id) CONTENT { user: $user, family: $family, created_at: $now, expires_at: $exp, revoked: false }",
        json!({"id": hash_token(&refresh), "user": user, "family": family, "now": now,
               "exp": now + keys.refresh_ttl.as_millis() as i64}),
    )
    .await?;
    Ok(Tokens {
        access_token: keys.access(user, role, &family)?,
        token_type: "Bearer".into(),
        expires_in: keys.access_ttl.as_secs(),
        refresh_token: refresh,
        user_id: user.to_string(),
    })
}

/// Marks `refresh` used and returns its (user, family), or says why it cannot be used. A
/// token used twice revokes its whole family: one of the two users is a thief.
pub async fn consume(
    db: &Db,
    keys: &Keys,
    refresh: &str,
) -> anyhow::Result<Result<(String, String), RefreshRefusal>> {
    let id = hash_token(refresh);
    let now = now_ms();
    // One statement, so two concurrent refreshes of the same token cannot both win.
    let won: Vec<RefreshRow> = db
        .rows(
            "UPDATE type::record('refresh_token', $id) SET used_at = $now
             WHERE used_at = NONE AND revoked = false AND expires_at > $now RETURN AFTER",
            json!({"id": id, "now": now}),
        )
        .await?;
    if let Some(row) = won.into_iter().next() {
        return Ok(Ok((row.user, row.family)));
    }
    Ok(Err(match stored(db, &id).await? {
        None => RefreshRefusal::Unknown,
        Some(row) if row.used_at.is_some() && !row.revoked => {
            tracing::warn!(user = %row.user, "a used refresh token was presented again: revoking its family");
            revoke_family(db, keys, &row.family).await?;
            RefreshRefusal::Reused
        }
        Some(row) if row.used_at.is_some() => RefreshRefusal::Reused,
        Some(row) => {
            let _ = row.expires_at;
            RefreshRefusal::Ended
        }
    }))
}

/// The stored refresh token whose hash is `id`.
async fn stored(db: &Db, id: &str) -> StoreResult<Option<RefreshRow>> {
    db.one(
        "SELECT * FROM type::record('refresh_token', $id)",
        json!({"id": id}),
    )
    .await
}

/// The session family a refresh token belongs to, used or not (to end it on sign-out).
pub async fn family_of(db: &Db, refresh: &str) -> StoreResult<Option<String>> {
    Ok(stored(db, &hash_token(refresh)).await?.map(|r| r.family))
}

/// Revokes every refresh token of `family`, and so its access tokens (at once on this node,
/// within [`SESSION_RECHECK`] on others).
pub async fn revoke_family(db: &Db, keys: &Keys, family: &str) -> StoreResult<()> {
    db.exec(
        "UPDATE refresh_token SET revoked = true WHERE family = $family",
        json!({"family": family}),
    )
    .await?;
    keys.revoked_here(family);
    Ok(())
}

/// Revokes every session of `user` except `keep`.
pub async fn revoke_others(
    db: &Db,
    keys: &Keys,
    user: &str,
    keep: Option<&str>,
) -> StoreResult<()> {
    #[derive(Deserialize)]
    struct Fam {
        family: String,
    }
    let families: Vec<Fam> = db
        .rows(
            "SELECT family FROM refresh_token WHERE user = $user AND revoked = false GROUP BY family",
            json!({"user": user}),
        )
        .await?;
    db.exec(
        "UPDATE refresh_token SET revoked = true WHERE user = $user AND family != $keep",
        json!({"user": user, "keep": keep.unwrap_or("")}),
    )
    .await?;
    for f in families.iter().filter(|f| Some(f.family.as_str()) != keep) {
        keys.revoked_here(&f.family);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(600),
            Duration::from_secs(86400),
        )
    }

    #[test]
    fn access_tokens_round_trip_and_forgeries_fail() {
        let k = keys();
        let t = k.access("u1", Role::Learner, "f1").expect("signs");
        let c = k.verify_access(&t).expect("verifies");
        assert_eq!(
            (c.sub.as_str(), c.role, c.fam.as_str()),
            ("u1", Role::Learner, "f1")
        );

        // Signed with another key.
        let other = Keys::new(
            b"another-secret-another-secret-xx",
            Duration::from_secs(600),
            Duration::from_secs(1),
        );
        let forged = other.access("u1", Role::Operator, "f1").expect("signs");
        assert_eq!(
            k.verify_access(&forged).map_err(|e| e.code()).err(),
            Some("invalid_token")
        );

        // alg: none, with the same claims.
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let claims: serde_json::Value = serde_json::to_value(&c).expect("json");
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&claims)
        );
        assert_eq!(
            k.verify_access(&none).map_err(|e| e.code()).err(),
            Some("invalid_token")
        );

        k.revoked_here("f1");
        assert_eq!(
            k.verify_access(&t).map_err(|e| e.code()).err(),
            Some("session_revoked")
        );
    }

    /// A correctly signed token that is not valid yet, or claims to be issued in the future,
    /// is refused; a little clock skew is not.
    #[test]
    fn tokens_from_the_future_are_refused() {
        let k = keys();
        let now = now_ms() / 1000;
        let signed = |iat: i64, nbf: Option<i64>| {
            let claims = Claims {
                sub: "u1".into(),
                role: Role::Learner,
                fam: "f1".into(),
                iat,
                nbf,
                exp: now + 600,
                iss: ISSUER.into(),
                aud: AUDIENCE.into(),
            };
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &k.encoding).unwrap()
        };
        let code = |t: String| k.verify_access(&t).map_err(|e| e.code()).err();
        assert_eq!(code(signed(now, Some(now + 300))), Some("invalid_token"));
        assert_eq!(code(signed(now + 300, None)), Some("invalid_token"));
        assert_eq!(
            code(signed(now + 2, Some(now + 2))),
            None,
            "within the skew"
        );
        assert_eq!(code(signed(now - 60, Some(now - 60))), None);
    }

    /// A session ended in the database is refused by a node that never saw it end (another
    /// node, or this one after a restart), and an account's deleted sessions are too.
    #[tokio::test]
    async fn revocation_is_read_from_the_database() {
        let db = Db::connect("mem://", None).await.unwrap();
        let node_a = keys();
        let t = issue(&db, &node_a, "u1", Role::Learner, None)
            .await
            .unwrap();
        let node_b = keys();
        let claims = node_b.authenticate(&db, &t.access_token).await.unwrap();
        assert_eq!(claims.sub, "u1");

        let mut ended = node_a.ended_sessions();
        revoke_family(&db, &node_a, &claims.fam).await.unwrap();
        assert_eq!(
            ended.recv().await.unwrap(),
            claims.fam,
            "sockets hear of it"
        );
        let fresh = keys();
        let code = |r: Result<Claims, ApiError>| r.map_err(|e| e.code()).err();
        assert_eq!(
            code(fresh.authenticate(&db, &t.access_token).await),
            Some("session_revoked")
        );
        assert_eq!(
            code(node_a.authenticate(&db, &t.access_token).await),
            Some("session_revoked")
        );

        let other = issue(&db, &node_a, "u2", Role::Learner, None)
            .await
            .unwrap();
        db.exec("DELETE refresh_token WHERE user = 'u2'", json!({}))
            .await
            .unwrap();
        assert_eq!(
            code(keys().authenticate(&db, &other.access_token).await),
            Some("session_revoked")
        );
    }
}
