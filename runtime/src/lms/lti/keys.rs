//! The tool's signing keys (Penpal's, as an LTI tool): RS256 keys kept in the database
//! sealed with AES-256-GCM under a key derived from the server secret, so every node signs
//! with the same key and a database dump holds no usable private key. One key signs; after a
//! rotation the old one stays published at `/.well-known/jwks.json` for [`OVERLAP_MS`], so
//! what it signed still verifies. Private keys never leave this module: plugins see key ids.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use super::rsa::RsaKey;
use crate::store::sealed::Sealer;
use crate::store::{Db, StoreResult, now_ms};

/// How long a retired key stays published.
pub const OVERLAP_MS: i64 = 7 * 86_400_000;
/// How long a node trusts its copy of the signing key (another node may rotate).
const FRESH_MS: i64 = 60_000;

/// The tool's keys.
pub struct ToolKeys {
    db: Db,
    seal: Sealer,
    current: RwLock<Option<(RsaKey, i64)>>,
}

#[derive(Deserialize)]
struct Row {
    kid: String,
    sealed: String,
}

impl ToolKeys {
    /// The keys in `db`, sealed under `secret` (the server secret).
    pub fn new(db: Db, secret: &[u8]) -> anyhow::Result<Arc<ToolKeys>> {
        Ok(Arc::new(ToolKeys {
            db,
            seal: Sealer::new(secret, b"penpal lti tool key sealing v1")?,
            current: RwLock::new(None),
        }))
    }

    fn open(&self, row: &Row) -> anyhow::Result<RsaKey> {
        let plain = self.seal.open(&row.kid, &row.sealed).map_err(|_| {
            anyhow::anyhow!(
                "the LTI key {} does not open with this server's secret: was PENPAL_JWT_SECRET changed?",
                row.kid
            )
        })?;
        RsaKey::from_pkcs1(&row.kid, &plain)
    }

    async fn insert_active(&self, retire_others: bool) -> anyhow::Result<()> {
        let key = RsaKey::generate()?;
        let sealed = self.seal.seal(&key.kid, key.pkcs1())?;
        let now = now_ms();
        // Without `retire_others`, a key is made only when none signs (two nodes starting at
        // once make one between them).
        self.db
            .exec(
                "BEGIN TRANSACTION;
                 IF $retire { UPDATE lti_key SET active = false, retired_at = $now WHERE active = true };
                 LET $signing = (SELECT VALUE count() FROM lti_key WHERE active = true GROUP ALL)[0] ?? 0;
                 IF $signing = 0 {
                     CREATE type::record('lti_key', $kid) CONTENT { kid: $kid, sealed: $sealed, active: true, created_at: $now }
                 };
                 COMMIT TRANSACTION;",
                json!({"retire": retire_others, "now": now, "kid": key.kid, "sealed": sealed}),
            )
            .await?;
        *self.current.write().await = None;
        Ok(())
    }

    /// The key that signs now (made on first use).
    pub async fn signing(&self) -> anyhow::Result<RsaKey> {
        if let Some((key, at)) = self.current.read().await.as_ref()
            && now_ms() - at < FRESH_MS
        {
            return Ok(key.clone());
        }
        for _ in 0..2 {
            let row: Option<Row> = self
                .db
                .one(
                    "SELECT kid, sealed, created_at FROM lti_key WHERE active = true ORDER BY created_at DESC LIMIT 1",
                    json!({}),
                )
                .await?;
            if let Some(row) = row {
                let key = self.open(&row)?;
                *self.current.write().await = Some((key.clone(), now_ms()));
                return Ok(key);
            }
            self.insert_active(false).await?;
        }
        anyhow::bail!("no LTI signing key could be made")
    }

    /// Makes a new signing key; the old one stays published for [`OVERLAP_MS`]. Its key id.
    pub async fn rotate(&self) -> anyhow::Result<String> {
        self.insert_active(true).await?;
        Ok(self.signing().await?.kid)
    }

    /// The published keys: the signing one and those retired less than [`OVERLAP_MS`] ago.
    pub async fn jwks(&self) -> anyhow::Result<Value> {
        self.signing().await?;
        let rows: Vec<Row> = self
            .db
            .rows(
                "SELECT kid, sealed, created_at FROM lti_key WHERE active = true OR retired_at > $since ORDER BY created_at DESC",
                json!({"since": now_ms() - OVERLAP_MS}),
            )
            .await?;
        let keys = rows
            .iter()
            .map(|r| self.open(r).map(|k| k.jwk()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(json!({ "keys": keys }))
    }
}

/// Keys retired more than [`OVERLAP_MS`] ago, removed.
pub async fn prune(db: &Db) -> StoreResult<()> {
    db.exec(
        "DELETE lti_key WHERE active = false AND retired_at < $before",
        json!({"before": now_ms() - OVERLAP_MS}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    #[tokio::test]
    async fn keys_are_made_once_sealed_rotated_and_kept_for_the_overlap() {
        let db = Db::connect("mem://", None).await.unwrap();
        let keys = ToolKeys::new(db.clone(), &[7u8; 32]).unwrap();
        let first = keys.signing().await.unwrap();
        assert_eq!(keys.signing().await.unwrap().kid, first.kid);
        let sealed: Option<String> = db
            .one("SELECT VALUE sealed FROM lti_key LIMIT 1", json!({}))
            .await
            .unwrap();
        let raw = STANDARD.decode(sealed.unwrap()).unwrap();
        assert!(
            !raw.windows(16)
                .any(|w| first.pkcs1().windows(16).any(|k| k == w)),
            "the stored key is sealed"
        );
        let kid = keys.rotate().await.unwrap();
        assert_ne!(kid, first.kid);
        let jwks = keys.jwks().await.unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [kid.as_str(), first.kid.as_str()]);
        // Another server secret cannot open them.
        let other = ToolKeys::new(db, &[8u8; 32]).unwrap();
        assert!(other.signing().await.is_err());
    }
}
