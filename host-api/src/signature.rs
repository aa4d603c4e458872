//! HMAC-SHA256 signatures in hex, the scheme most webhooks use (Stripe's `v1`, Paddle's `h1`,
//! penpal's own webhook notifier): sign a message made of parts, check a received signature
//! in constant time, or check a whole timestamped header ([`Scheme`]) with a tolerance.

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

/// How a provider writes a timestamped signature header: `key=value` pairs split by
/// `separator`, the Unix time under `time`, one or more signatures under `signature`, each an
/// HMAC of the time, `joiner` and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct Scheme {
    /// Between pairs: `,` (Stripe) or `;` (Paddle).
    pub separator: char,
    /// The time's key: `t` (Stripe) or `ts` (Paddle).
    pub time: &'static str,
    /// The signatures' key: `v1` (Stripe) or `h1` (Paddle).
    pub signature: &'static str,
    /// Between the time and the body in the signed message: `.` (Stripe) or `:` (Paddle).
    pub joiner: &'static [u8],
}

/// Checks `header` against `body` and `secret`: its time no further than `tolerance` seconds
/// from `now`, and any of its signatures matching (every one is tried: providers sign with
/// each active secret during a rotation). `denied` says what is wrong.
pub fn verify(
    scheme: &Scheme,
    header: &str,
    body: &[u8],
    secret: &[u8],
    now: u64,
    tolerance: u64,
) -> Result<(), PluginError> {
    let mut at = None;
    let mut signatures = Vec::new();
    for pair in header.split(scheme.separator) {
        match pair.trim().split_once('=') {
            Some((k, v)) if k == scheme.time => at = v.parse::<u64>().ok(),
            Some((k, v)) if k == scheme.signature => signatures.push(v.to_string()),
            _ => {}
        }
    }
    let at = at.ok_or_else(|| PluginError::Denied("the signature has no timestamp".into()))?;
    if at.abs_diff(now) > tolerance {
        return Err(PluginError::Denied(format!(
            "the signature is {} s from now, more than the {tolerance} s allowed",
            at.abs_diff(now)
        )));
    }
    let at = at.to_string();
    if matches_any(secret, &[at.as_bytes(), scheme.joiner, body], &signatures)? {
        Ok(())
    } else {
        Err(PluginError::Denied(
            "no signature matches the webhook secret".into(),
        ))
    }
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

    #[test]
    fn a_timestamped_header_is_checked_for_age_and_any_signature() {
        let scheme = Scheme {
            separator: ';',
            time: "ts",
            signature: "h1",
            joiner: b":",
        };
        let good = sign_hex(b"new", &[b"1000", b":", b"{}"]).unwrap();
        let header = format!("ts=1000;h1=00ff;h1={good}");
        assert!(verify(&scheme, &header, b"{}", b"new", 1200, 300).is_ok());
        assert!(
            verify(&scheme, &header, b"{}", b"new", 1301, 300).is_err(),
            "too old"
        );
        assert!(
            verify(&scheme, &header, b"{} ", b"new", 1000, 300).is_err(),
            "another body"
        );
        assert!(verify(&scheme, &format!("h1={good}"), b"{}", b"new", 1000, 300).is_err());
    }
}
