//! Passwords: the policy a new one must meet, and argon2id hashing on a blocking thread (a
//! hash takes tens of milliseconds of CPU, which must not stall the async workers).
//!
//! Hashing works in a fixed pool of memory, one argon2 buffer (19 MiB) per core, reused by
//! every hash. Allocating a fresh buffer per hash let the allocator keep each one: a burst of
//! 100 sign-ups left the server holding 1.5 GB. The pool also caps concurrent hashes at the
//! core count, so a flood of logins queues instead of taking memory.

use std::sync::{LazyLock, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

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

/// Argon2 working memory: one buffer per permit of `slots`.
struct Pool {
    slots: Semaphore,
    buffers: Mutex<Vec<Vec<Block>>>,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let n = std::thread::available_parallelism().map_or(2, |n| n.get());
    Pool {
        slots: Semaphore::new(n),
        buffers: Mutex::new(Vec::with_capacity(n)),
    }
});

/// The raw output of `password` with the decoded `salt` under `argon`, `len` bytes long,
/// computed on a blocking thread in a pooled buffer.
async fn derive(
    argon: Argon2<'static>,
    password: String,
    salt: Vec<u8>,
    len: usize,
) -> anyhow::Result<Output> {
    let _slot = POOL.slots.acquire().await?;
    tokio::task::spawn_blocking(move || {
        let blocks = argon.params().block_count();
        let taken = POOL.buffers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut buffer = taken.unwrap_or_default();
        if buffer.len() < blocks {
            // Only the first hashes (or a stored hash with a larger memory cost) grow a buffer.
            buffer.resize(blocks, Block::new());
        }
        let mut out = vec![0u8; len];
        let done = argon.hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            &mut buffer[..blocks],
        );
        // Kept at the default size: an odd larger one is not worth holding on to.
        if buffer.len() == Params::DEFAULT.block_count() {
            POOL.buffers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(buffer);
        }
        done.map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
        Output::new(&out).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// The raw bytes of a PHC salt.
fn salt_bytes(salt: Salt<'_>) -> anyhow::Result<Vec<u8>> {
    let mut buf = [0u8; Salt::MAX_LENGTH];
    let raw = salt
        .decode_b64(&mut buf)
        .map_err(|e| anyhow::anyhow!("unreadable salt: {e}"))?;
    Ok(raw.to_vec())
}

/// The argon2id PHC string of `password`.
pub async fn hash(password: String) -> anyhow::Result<String> {
    let params = Params::DEFAULT;
    let salt = SaltString::generate(&mut OsRng);
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = derive(
        argon,
        password,
        salt_bytes(salt.as_salt())?,
        Params::DEFAULT_OUTPUT_LEN,
    )
    .await?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches `phc`. With no stored hash, a dummy one is checked so that an
/// unknown email takes as long to refuse as a wrong password.
pub async fn verify(password: String, phc: Option<String>) -> anyhow::Result<bool> {
    let known = phc.is_some();
    let phc = phc.unwrap_or_else(|| DUMMY.to_string());
    let unreadable = |e: &dyn std::fmt::Display| anyhow::anyhow!("stored hash unreadable: {e}");
    let parsed = PasswordHash::new(&phc).map_err(|e| unreadable(&e))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        anyhow::bail!("stored hash has no salt or output");
    };
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| unreadable(&e))?
        .unwrap_or_default();
    let argon = Argon2::new(
        Algorithm::try_from(parsed.algorithm).map_err(|e| unreadable(&e))?,
        version,
        Params::try_from(&parsed).map_err(|e| unreadable(&e))?,
    );
    let got = derive(argon, password, salt_bytes(salt)?, expected.len()).await?;
    // `Output` compares in constant time.
    Ok(got == expected && known)
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

    async fn verifies(password: &str, hash: String) -> bool {
        verify(password.into(), Some(hash)).await.expect("verifies")
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_do() {
        let h = hash("correct horse battery".into()).await.expect("hashes");
        assert!(h.starts_with("$argon2id$"));
        assert!(verifies("correct horse battery", h.clone()).await);
        assert!(!verifies("wrong horse battery", h).await);
        assert!(!verify("anything".into(), None).await.expect("verifies"));
    }

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Ours, checked by the argon2 crate's own verifier.
        let ours = hash("correct horse battery".into()).await.expect("hashes");
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        // The crate's, with other parameters, checked by ours.
        let salt = SaltString::generate(&mut OsRng);
        let params = Params::new(8 * 1024, 3, 1, None).expect("params");
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct horse battery", &salt)
            .expect("hashes")
            .to_string();
        assert!(verifies("correct horse battery", theirs.clone()).await);
        assert!(!verifies("correct horse batterY", theirs).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_hashes_share_a_fixed_pool_of_memory() {
        let hashes = (0..12).map(|i| hash(format!("correct horse battery {i}")));
        for h in futures_util::future::join_all(hashes).await {
            assert!(
                h.expect("hashes")
                    .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
            );
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let kept = POOL.buffers.lock().expect("pool").len();
        assert!(
            (1..=cores).contains(&kept),
            "{kept} buffers kept for {cores} cores"
        );
    }
}
