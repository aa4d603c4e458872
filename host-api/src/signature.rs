//! HMAC-SHA256 signatures in hex, the scheme most webhooks use (Stripe's `v1`, Paddle's `h1`,
//! penpal's own webhook notifier): sign a message made of parts, or check a received
//! signature in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::types::PluginError;

fn mac(secret: &[u8], parts: &[&[u8]]) -> Result<Hmac<Sha256>, PluginError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .map_err(|_| PluginError::Internal("the signing secret was refused".into()))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac)
}

/// The hex HMAC-SHA256 of the concatenated `parts` under `secret`.
pub fn sign_hex(secret: &[u8], parts: &[&[u8]]) -> Result<String, PluginError> {
    Ok(mac(secret, parts)?
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Whether any of `candidates` (hex, as a provider sends several during a secret rotation) is
/// the HMAC-SHA256 of the concatenated `parts` under `secret`; compared in constant time.
pub fn matches_any(
    secret: &[u8],
    parts: &[&[u8]],
    candidates: &[String],
) -> Result<bool, PluginError> {
    for candidate in candidates {
        let Some(raw) = unhex(candidate) else {
            continue;
        };
        if mac(secret, parts)?.verify_slice(&raw).is_ok() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The bytes of an even-length hex string.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_checks_against_its_parts_only() {
        let sig = sign_hex(b"whsec", &[b"12", b".", b"{}"]).unwrap();
        assert_eq!(sig.len(), 64);
        assert!(matches_any(b"whsec", &[b"12.{}"], &["zz".into(), sig.clone()]).unwrap());
        assert!(!matches_any(b"other", &[b"12.{}"], std::slice::from_ref(&sig)).unwrap());
        assert!(!matches_any(b"whsec", &[b"12.{} "], &[sig]).unwrap());
        assert_eq!(unhex("0aff"), Some(vec![10, 255]));
        assert_eq!(unhex("abc"), None);
    }
}
