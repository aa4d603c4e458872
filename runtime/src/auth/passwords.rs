//! Passwords: the policy a new one must meet, and argon2id hashing on a blocking thread (a
//! hash takes tens of milliseconds of CPU, which must not stall the async workers).

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest password accepted, in characters.
pub const MIN_LEN: usize = 10;
/// Longest password accepted, in characters (argon2 would take more, but nobody types it).
pub const MAX_LEN: usize = 128;

/// Passwords so common that length alone does not make them safe.
const COMMON: &[&str] = &[
    "password123",
    "1234567890",
    "qwertyuiop",
    "123456789a",
    "password1234",
    "iloveyou123",
    "motdepasse",
    "azertyuiop",
    "0123456789",
    "abcdefghij",
    "letmein123",
    "welcome123",
];

/// Why `password` is not acceptable for the account `email`, if it is not.
pub fn policy(password: &str, email: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Some(format!("use at least {MIN_LEN} characters"));
    }
    if chars > MAX_LEN {
        return Some(format!("use at most {MAX_LEN} characters"));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Some("this password is too common; pick another".into());
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Some("use more than a few different characters".into());
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if local.len() >= 4 && lower.contains(&local) {
        return Some("do not build the password from your email address".into());
    }
    None
}

/// The argon2id PHC string of `password`.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// Whether `password` matches `phc`. With no stored hash, a dummy one is checked so that an
/// unknown email takes as long to refuse as a wrong password.
pub async fn verify(password: String, phc: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let phc = phc.unwrap_or_else(|| DUMMY.to_string());
        let parsed =
            PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && phc != DUMMY)
    })
    .await?
}

/// An argon2id hash of a random string, checked against when the account does not exist.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3Gd2cDe6ITm/WwVJQSJmFEVSDQ7g8aB0qgXCJ4WqUMM";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_the_problem() {
        assert!(policy("short", "a@b.c").is_some_and(|m| m.contains("at least")));
        assert!(policy("aaaaaaaaaaaa", "a@b.c").is_some());
        assert!(policy("Password123", "a@b.c").is_some_and(|m| m.contains("common")));
        assert!(policy("marie.curie-1867", "marie.curie@example.com").is_some());
        assert_eq!(policy("correct horse battery", "a@b.c"), None);
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_do() {
        let h = hash("correct horse battery".into()).await.expect("hashes");
        assert!(h.starts_with("$argon2id$"));
        assert!(
            verify("correct horse battery".into(), Some(h.clone()))
                .await
                .expect("verifies")
        );
        assert!(
            !verify("wrong horse battery".into(), Some(h))
                .await
                .expect("verifies")
        );
        assert!(!verify("anything".into(), None).await.expect("verifies"));
    }
}
