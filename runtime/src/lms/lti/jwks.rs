//! Platforms' public keys: each platform's JWKS, fetched through [`Outbound`] and cached for
//! [`TTL`]. A token naming a key id the cache does not hold refetches the set **once** (a
//! platform that rotated its keys is followed at once), but at most [`UNKNOWN_REFETCHES`]
//! times a minute per set, so tokens with made-up key ids cannot make penpal hammer a
//! platform.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use tokio::sync::Mutex;

use super::outbound::{Outbound, body};

/// How long a fetched key set is trusted.
pub const TTL: Duration = Duration::from_secs(3600);
/// Refetches for unknown key ids allowed per set per minute.
pub const UNKNOWN_REFETCHES: usize = 3;

struct Entry {
    keys: Vec<Jwk>,
    fetched: Instant,
    /// When unknown key ids made it refetch, in the last minute.
    refetches: Vec<Instant>,
}

/// Why no key was found.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The set was fetched and has no key with this id.
    #[error("the platform publishes no key `{0}`")]
    UnknownKid(String),
    /// The set could not be fetched or read.
    #[error("the platform's keys could not be fetched: {0}")]
    Unreachable(String),
}

/// Cached key sets by URL.
pub struct PlatformKeys {
    outbound: Outbound,
    cache: Mutex<HashMap<String, Entry>>,
}

impl PlatformKeys {
    /// An empty cache fetching through `outbound`.
    pub fn new(outbound: Outbound) -> PlatformKeys {
        PlatformKeys {
            outbound,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<Jwk>, KeyError> {
        if let Some(why) = self.outbound.refuses(url) {
            return Err(KeyError::Unreachable(why));
        }
        metrics::counter!("penpal_lti_jwks_fetches_total").increment(1);
        let resp = self
            .outbound
            .client()
            .get(url)
            .send()
            .await
            .map_err(|e| KeyError::Unreachable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(KeyError::Unreachable(format!("HTTP {}", resp.status())));
        }
        let raw = body(resp)
            .await
            .map_err(|e| KeyError::Unreachable(e.to_string()))?;
        let set: JwkSet = serde_json::from_slice(&raw)
            .map_err(|e| KeyError::Unreachable(format!("not a JWK set: {e}")))?;
        Ok(set.keys)
    }

    /// The key `kid` of the set at `url`.
    pub async fn key(&self, url: &str, kid: &str) -> Result<DecodingKey, KeyError> {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        let find = |keys: &[Jwk]| {
            keys.iter()
                .find(|k| k.common.key_id.as_deref() == Some(kid))
                .cloned()
        };
        let (found, recent) = match cache.get_mut(url) {
            Some(e) if now.duration_since(e.fetched) < TTL => {
                e.refetches
                    .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
                (find(&e.keys), Some(e.refetches.clone()))
            }
            _ => (None, None),
        };
        let jwk = match (found, recent) {
            (Some(jwk), _) => jwk,
            (None, Some(r)) if r.len() >= UNKNOWN_REFETCHES => {
                return Err(KeyError::UnknownKid(kid.to_string()));
            }
            (None, recent) => {
                let keys = self.fetch(url).await?;
                let jwk = find(&keys);
                let mut refetches = recent.unwrap_or_default();
                refetches.push(now);
                cache.insert(
                    url.to_string(),
                    Entry {
                        keys,
                        fetched: now,
                        refetches,
                    },
                );
                jwk.ok_or_else(|| KeyError::UnknownKid(kid.to_string()))?
            }
        };
        DecodingKey::from_jwk(&jwk)
            .map_err(|e| KeyError::Unreachable(format!("a key is unusable: {e}")))
    }
}
