//! OpenID Connect id tokens' checks, shared by LTI launches and schools' own sign-in: `alg`
//! RS256 (`none` and HS* are refused before any key is read, so a public key can never serve
//! as an HMAC secret); a `kid`; the issuer's key by `kid` (one refetch of its JWKS on an
//! unknown one); the signature; `iss`; `aud` holding penpal's client id, and `azp` naming it
//! whenever there are several audiences (or an `azp` at all); `exp` not past and `iat` not
//! ahead, with [`SKEW_S`]; `nonce` the one penpal sent.

use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::jwks::{KeyError, PlatformKeys};
use super::launch::Refusal;
use crate::store::now_ms;

/// Clock skew allowed on `exp` and `iat`.
pub const SKEW_S: u64 = 60;

/// What a token must say.
pub struct Expected<'a> {
    /// The issuer.
    pub issuer: &'a str,
    /// Penpal's client id there.
    pub client_id: &'a str,
    /// The issuer's key set.
    pub jwks_url: &'a str,
    /// The nonce penpal sent with the request.
    pub nonce: &'a str,
}

/// The claims of `token` when it passes every check.
pub async fn check(keys: &PlatformKeys, token: &str, e: &Expected<'_>) -> Result<Value, Refusal> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| Refusal::Malformed(e.to_string()))?;
    if header.alg != Algorithm::RS256 {
        return Err(Refusal::Algorithm(format!("{:?}", header.alg)));
    }
    let kid = header
        .kid
        .ok_or_else(|| Refusal::Malformed("the header names no key (`kid`)".into()))?;
    let key = keys.key(e.jwks_url, &kid).await.map_err(|err| match err {
        KeyError::UnknownKid(k) => Refusal::Signature(format!("the issuer publishes no key `{k}`")),
        KeyError::Unreachable(why) => Refusal::Unreachable(why),
    })?;
    let mut v = Validation::new(Algorithm::RS256);
    v.leeway = SKEW_S;
    v.set_issuer(&[e.issuer]);
    v.set_audience(&[e.client_id]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|err| {
        use jsonwebtoken::errors::ErrorKind as K;
        match err.kind() {
            K::InvalidSignature => Refusal::Signature("wrong signature".into()),
            K::ExpiredSignature => Refusal::Claim("exp", "the token has expired".into()),
            K::InvalidIssuer => Refusal::Claim("iss", format!("not `{}`", e.issuer)),
            K::InvalidAudience => Refusal::Claim(
                "aud",
                "penpal's client id is not among the audiences".into(),
            ),
            K::MissingRequiredClaim(c) => Refusal::Malformed(format!("no `{c}` claim")),
            other => Refusal::Malformed(format!("{other:?}")),
        }
    })?;
    let c = data.claims;
    let now = now_ms() / 1000;
    let iat = c.get("iat").and_then(Value::as_i64).unwrap_or(i64::MAX);
    if iat > now + SKEW_S as i64 {
        return Err(Refusal::Claim("iat", "issued in the future".into()));
    }
    let several = c
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    match c.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != e.client_id => {
            return Err(Refusal::Claim("azp", "not penpal's client id".into()));
        }
        None if several => {
            return Err(Refusal::Claim(
                "azp",
                "missing, with several audiences".into(),
            ));
        }
        _ => {}
    }
    if c.get("nonce").and_then(Value::as_str) != Some(e.nonce) {
        return Err(Refusal::Claim(
            "nonce",
            "not the one sent with this login".into(),
        ));
    }
    Ok(c)
}
