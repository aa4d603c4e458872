//! Package signatures. A publisher signs a package with an ed25519 key; penpal checks the
//! signature against the publisher's registered key at publish and again at install.
//!
//! **What is signed**: the SHA-256 [`digest`] of a framed message — the label
//! `penpal-package-v1` and a zero byte, then the manifest file's exact bytes and the
//! component's exact bytes, each preceded by its length as a big-endian u64. The lengths fix
//! where one part ends, so no byte can move from one to the other, and the label keeps a
//! signature over anything else from passing as a package's. The signature file
//! ([`SIGNATURE_FILE`]) names the key by [`fingerprint`] and carries the digest, so a wrong
//! key and a changed package are told apart in the error.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// The signature file beside a package's manifest.
pub const SIGNATURE_FILE: &str = "penpal-plugin.sig";
/// The only algorithm.
pub const ALGORITHM: &str = "ed25519";
const LABEL: &[u8] = b"penpal-package-v1\0";
const PEM_LABEL: &str = "PRIVATE KEY";

/// The digest a signature covers (see the module docs for the framing).
pub fn digest(manifest: &[u8], component: &[u8]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(LABEL);
    ctx.update(&(manifest.len() as u64).to_be_bytes());
    ctx.update(manifest);
    ctx.update(&(component.len() as u64).to_be_bytes());
    ctx.update(component);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A public key's short name: base64url of the first 16 bytes of its SHA-256.
pub fn fingerprint(public: &[u8; 32]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public);
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

/// Why a signature or key was refused; each says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature file cannot be read.
    #[error("{SIGNATURE_FILE} is malformed: {0}")]
    Malformed(String),
    /// Not ed25519.
    #[error("the package is signed with `{0}`; penpal accepts ed25519 only")]
    Algorithm(String),
    /// Signed by another key than the one checked against.
    #[error(
        "the package is signed by key {signed_by}, not {expected}: sign it with the key registered for this publisher"
    )]
    OtherKey {
        /// The fingerprint in the signature file.
        signed_by: String,
        /// The fingerprint of the key checked against.
        expected: String,
    },
    /// The manifest or the component changed after signing.
    #[error("the manifest or the component changed after it was signed: sign the package again")]
    Changed,
    /// The signature does not verify.
    #[error(
        "the signature does not verify: the signature file was altered, or made with another key"
    )]
    Invalid,
    /// A key cannot be read.
    #[error("{0}")]
    Key(String),
}

/// A publisher's public key (32 bytes, ed25519).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Reads a key given as base64 (standard or URL-safe) of its 32 bytes.
    pub fn parse(text: &str) -> Result<PublicKey, SignatureError> {
        let text = text.trim();
        let raw = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| SignatureError::Key("a public key is the base64 of 32 bytes".into()))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| SignatureError::Key("an ed25519 public key is 32 bytes".into()))?;
        Ok(PublicKey(bytes))
    }

    /// Base64 of its bytes.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Its [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }
}

/// A publisher's private key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> anyhow::Result<SigningKey> {
        let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("could not generate a key"))?;
        SigningKey::from_pkcs8(doc.as_ref())
    }

    /// A key from its PKCS#8 bytes.
    pub fn from_pkcs8(pkcs8: &[u8]) -> anyhow::Result<SigningKey> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|_| anyhow::anyhow!("not an ed25519 private key (PKCS#8)"))?;
        Ok(SigningKey {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// A key from the PEM text [`to_pem`](Self::to_pem) writes.
    pub fn from_pem(text: &str) -> anyhow::Result<SigningKey> {
        let body: String = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----"))
            .collect();
        if !text.contains(&format!("-----BEGIN {PEM_LABEL}-----")) {
            anyhow::bail!("not a private key file (it has no `BEGIN {PEM_LABEL}` line)");
        }
        let der = STANDARD
            .decode(body)
            .map_err(|_| anyhow::anyhow!("the key file's body is not base64"))?;
        SigningKey::from_pkcs8(&der)
    }

    /// The key as PEM (PKCS#8).
    pub fn to_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.pkcs8);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN {PEM_LABEL}-----\n{}\n-----END {PEM_LABEL}-----\n",
            lines.join("\n")
        )
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(out)
    }

    /// Signs a package's manifest and component.
    pub fn sign(&self, manifest: &[u8], component: &[u8]) -> Signature {
        let d = digest(manifest, component);
        Signature {
            algorithm: ALGORITHM.into(),
            key: self.public().fingerprint(),
            digest: format!("sha256:{}", hex(&d)),
            signature: STANDARD.encode(self.pair.sign(&d).as_ref()),
        }
    }
}

/// The signature file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// `ed25519`.
    pub algorithm: String,
    /// The signing key's fingerprint.
    pub key: String,
    /// `sha256:` and the hex digest signed.
    pub digest: String,
    /// The signature, base64.
    pub signature: String,
}

impl Signature {
    /// Reads a signature file.
    pub fn parse(text: &str) -> Result<Signature, SignatureError> {
        toml::from_str(text).map_err(|e| SignatureError::Malformed(e.message().to_string()))
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks that `key` signed exactly this manifest and component.
    pub fn verify(
        &self,
        manifest: &[u8],
        component: &[u8],
        key: &PublicKey,
    ) -> Result<(), SignatureError> {
        if self.algorithm != ALGORITHM {
            return Err(SignatureError::Algorithm(self.algorithm.clone()));
        }
        if self.key != key.fingerprint() {
            return Err(SignatureError::OtherKey {
                signed_by: self.key.clone(),
                expected: key.fingerprint(),
            });
        }
        let d = digest(manifest, component);
        if self.digest != format!("sha256:{}", hex(&d)) {
            return Err(SignatureError::Changed);
        }
        let sig = STANDARD
            .decode(&self.signature)
            .map_err(|_| SignatureError::Malformed("`signature` is not base64".into()))?;
        UnparsedPublicKey::new(&ED25519, key.0)
            .verify(&d, &sig)
            .map_err(|_| SignatureError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &[u8] = b"[plugin]\nname = \"demo\"\n";
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0component bytes";

    #[test]
    fn a_signed_package_verifies_and_any_change_is_refused() {
        let key = SigningKey::generate().unwrap();
        let public = key.public();
        let sig = key.sign(MANIFEST, COMPONENT);
        assert_eq!(sig.verify(MANIFEST, COMPONENT, &public), Ok(()));
        // Through the file and back.
        let again = Signature::parse(&sig.to_toml()).unwrap();
        assert_eq!(again.verify(MANIFEST, COMPONENT, &public), Ok(()));

        // A byte of the component, of the manifest, or one moved across the boundary.
        let mut component = COMPONENT.to_vec();
        component[9] ^= 1;
        assert_eq!(
            sig.verify(MANIFEST, &component, &public),
            Err(SignatureError::Changed)
        );
        let manifest = b"[plugin]\nname = \"demp\"\n";
        assert_eq!(
            sig.verify(manifest, COMPONENT, &public),
            Err(SignatureError::Changed)
        );
        let (m, c) = (
            &MANIFEST[..MANIFEST.len() - 1],
            [&MANIFEST[MANIFEST.len() - 1..], COMPONENT].concat(),
        );
        assert_eq!(sig.verify(m, &c, &public), Err(SignatureError::Changed));

        // A digest rewritten to match a changed package: the signature no longer verifies.
        let mut forged = sig.clone();
        forged.digest = format!("sha256:{}", hex(&digest(MANIFEST, &component)));
        assert_eq!(
            forged.verify(MANIFEST, &component, &public),
            Err(SignatureError::Invalid)
        );
        let mut altered = sig.clone();
        altered.signature = key.sign(b"other", b"").signature;
        assert_eq!(
            altered.verify(MANIFEST, COMPONENT, &public),
            Err(SignatureError::Invalid)
        );

        // Another key: named in the error.
        let other = SigningKey::generate().unwrap().public();
        assert!(matches!(
            sig.verify(MANIFEST, COMPONENT, &other),
            Err(SignatureError::OtherKey { .. })
        ));
        // Another key claiming this one's fingerprint: the signature does not verify.
        let impostor = SigningKey::generate().unwrap();
        let mut claimed = impostor.sign(MANIFEST, COMPONENT);
        claimed.key = public.fingerprint();
        assert_eq!(
            claimed.verify(MANIFEST, COMPONENT, &public),
            Err(SignatureError::Invalid)
        );

        let mut rsa = sig.clone();
        rsa.algorithm = "rsa".into();
        assert_eq!(
            rsa.verify(MANIFEST, COMPONENT, &public),
            Err(SignatureError::Algorithm("rsa".into()))
        );
        assert!(matches!(
            Signature::parse("algorithm = 1"),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn keys_round_trip_through_their_files() {
        let key = SigningKey::generate().unwrap();
        let back = SigningKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(back.public(), key.public());
        let public = PublicKey::parse(&key.public().to_base64()).unwrap();
        assert_eq!(public, key.public());
        assert_eq!(public.fingerprint().len(), 22);
        assert!(SigningKey::from_pem("hello").is_err());
        assert!(PublicKey::parse("c2hvcnQ=").is_err());
    }
}
