//! Secrets kept in the database sealed: AES-256-GCM under a key derived from the server
//! secret and a purpose, so every node opens them, a database dump holds nothing usable, and
//! a value sealed for one purpose or row (the associated data) does not open as another.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Seals and opens values for one purpose.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// A sealer for `purpose` (a fixed label, versioned) under the server `secret`.
    pub fn new(secret: &[u8], purpose: &[u8]) -> anyhow::Result<Sealer> {
        let derived = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
            purpose,
        );
        let key = UnboundKey::new(&AES_256_GCM, derived.as_ref())
            .map_err(|_| anyhow::anyhow!("could not derive a sealing key"))?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
        })
    }

    /// `plain` sealed and bound to `aad` (the row it belongs to), base64: nonce, then
    /// ciphertext and tag.
    pub fn seal(&self, aad: &str, plain: &[u8]) -> anyhow::Result<String> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| anyhow::anyhow!("could not seal a value"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend(sealed);
        Ok(STANDARD.encode(out))
    }

    /// What [`seal`](Self::seal) sealed for `aad`; an error when it was sealed under another
    /// secret, purpose or row, or was altered.
    pub fn open(&self, aad: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let raw = STANDARD.decode(sealed)?;
        if raw.len() <= NONCE_LEN {
            anyhow::bail!("a sealed value is too short");
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let mut buf = sealed.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| anyhow::anyhow!("a sealed value's nonce is malformed"))?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| anyhow::anyhow!("a sealed value does not open"))?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_with_its_secret_purpose_and_row() {
        let s = Sealer::new(b"secret", b"purpose v1").unwrap();
        let sealed = s.seal("row-1", b"hunter2").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_eq!(s.open("row-1", &sealed).unwrap(), b"hunter2");
        assert!(s.open("row-2", &sealed).is_err(), "bound to its row");
        let other_purpose = Sealer::new(b"secret", b"purpose v2").unwrap();
        assert!(other_purpose.open("row-1", &sealed).is_err());
        let other_secret = Sealer::new(b"other", b"purpose v1").unwrap();
        assert!(other_secret.open("row-1", &sealed).is_err());
    }
}
