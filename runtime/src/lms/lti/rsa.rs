//! RSA keys for LTI: generated with aws-lc-rs, signed and verified through `jsonwebtoken`
//! (RS256), published as JWKs. The tool's keys and the platform simulator's use the same code.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

/// An RSA key pair with its key id.
#[derive(Clone)]
pub struct RsaKey {
    /// Its key id (`kid`).
    pub kid: String,
    /// The private key as PKCS#1 DER (`RSAPrivateKey`).
    pkcs1: Vec<u8>,
    /// The public modulus and exponent, base64url.
    n: String,
    e: String,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey").field("kid", &self.kid).finish()
    }
}

/// Reads one DER TLV at the start of `der`: (tag, contents, rest).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`.
fn pkcs1_of_pkcs8(pkcs8: &[u8]) -> Option<&[u8]> {
    let (0x30, info, _) = tlv(pkcs8)? else {
        return None;
    };
    let (0x02, _, rest) = tlv(info)? else {
        return None;
    };
    let (0x30, _, rest) = tlv(rest)? else {
        return None;
    };
    let (0x04, key, _) = tlv(rest)? else {
        return None;
    };
    Some(key)
}

impl RsaKey {
    /// A fresh 2048-bit key.
    pub fn generate() -> anyhow::Result<RsaKey> {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("could not generate an RSA key"))?;
        let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
            .map_err(|_| anyhow::anyhow!("could not encode an RSA key"))?;
        let pkcs1 = pkcs1_of_pkcs8(pkcs8.as_ref())
            .ok_or_else(|| anyhow::anyhow!("an RSA key in an unexpected encoding"))?;
        let kid = crate::store::new_id();
        RsaKey::from_pkcs1(&kid, pkcs1)
    }

    /// The key `kid` from its PKCS#1 DER.
    pub fn from_pkcs1(kid: &str, pkcs1: &[u8]) -> anyhow::Result<RsaKey> {
        let pair = KeyPair::from_der(pkcs1).map_err(|e| anyhow::anyhow!("not an RSA key: {e}"))?;
        let public = pair.public_key();
        Ok(RsaKey {
            kid: kid.to_string(),
            pkcs1: pkcs1.to_vec(),
            n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The private key as PKCS#1 DER (to store, encrypted).
    pub fn pkcs1(&self) -> &[u8] {
        &self.pkcs1
    }

    /// The public key as a JWK (`RS256`, for signatures).
    pub fn jwk(&self) -> Value {
        json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig", "n": self.n, "e": self.e})
    }

    /// `claims` as a JWT signed with this key (RS256, with its `kid`).
    pub fn sign(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        self.sign_with(header, claims)
    }

    /// `claims` as a JWT signed with this key under `header` (tests forge headers with it).
    pub fn sign_with(&self, header: Header, claims: &impl Serialize) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_rsa_der(&self.pkcs1),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn a_generated_key_signs_what_its_jwk_verifies() {
        let key = RsaKey::generate().unwrap();
        let token = key
            .sign(&json!({"sub": "ana", "exp": 4_000_000_000u64}))
            .unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).unwrap();
        let decoded = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_jwk(&jwk).unwrap(),
            &Validation::new(Algorithm::RS256),
        )
        .unwrap();
        assert_eq!(decoded.claims["sub"], "ana");
        assert_eq!(decoded.header.kid.as_deref(), Some(key.kid.as_str()));
        let again = RsaKey::from_pkcs1(&key.kid, key.pkcs1()).unwrap();
        assert_eq!(again.jwk(), key.jwk());
        let other = RsaKey::generate().unwrap();
        let other_jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(other.jwk()).unwrap();
        assert!(
            jsonwebtoken::decode::<Value>(
                &token,
                &DecodingKey::from_jwk(&other_jwk).unwrap(),
                &Validation::new(Algorithm::RS256),
            )
            .is_err()
        );
    }
}
