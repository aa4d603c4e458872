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

/// The least zxcvbn score (0–4) a new password needs: 3 is "safely unguessable" against an
/// online attack and a slowed offline one.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// The language advice is given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English (the default).
    En,
    /// French.
    Fr,
}

impl Lang {
    /// Its language code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The first language of an `Accept-Language` header (or an interface language) that
    /// penpal speaks; English otherwise.
    pub fn pick(preferred: Option<&str>) -> Lang {
        let first = preferred
            .unwrap_or_default()
            .split(',')
            .map(|tag| {
                tag.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .find(|tag| tag.starts_with("fr") || tag.starts_with("en"));
        match first {
            Some(tag) if tag.starts_with("fr") => Lang::Fr,
            _ => Lang::En,
        }
    }
}

/// Why `password` is not acceptable for the account `email`, if it is not, with advice in
/// `lang`. Strength is estimated by zxcvbn (dictionaries, keyboard patterns, sequences,
/// repeats, dates, and the account's own email), not by character-class rules.
pub fn policy(password: &str, email: &str, lang: Lang) -> Option<String> {
    let fr = lang == Lang::Fr;
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Some(if fr {
            format!("utilisez au moins {MIN_LEN} caractères")
        } else {
            format!("use at least {MIN_LEN} characters")
        });
    }
    if chars > MAX_LEN {
        return Some(if fr {
            format!("utilisez au plus {MAX_LEN} caractères")
        } else {
            format!("use at most {MAX_LEN} characters")
        });
    }
    let local = email.split('@').next().unwrap_or_default();
    let estimate = zxcvbn::zxcvbn(password, &[email, local, "penpal"]);
    if estimate.score() >= MIN_SCORE {
        return None;
    }
    let mut advice = vec![if fr {
        "ce mot de passe est trop facile à deviner".to_string()
    } else {
        "this password is too easy to guess".to_string()
    }];
    if let Some(feedback) = estimate.feedback() {
        if let Some(w) = feedback.warning() {
            advice.push(if fr {
                warning_fr(w).into()
            } else {
                w.to_string()
            });
        }
        for s in feedback.suggestions() {
            advice.push(if fr {
                suggestion_fr(*s).into()
            } else {
                s.to_string()
            });
        }
    }
    if advice.len() == 1 {
        advice.push(if fr {
            "Ajoutez un mot ou deux : les mots peu courants, c'est mieux.".into()
        } else {
            zxcvbn::feedback::Suggestion::AddAnotherWordOrTwo.to_string()
        });
    }
    // "too easy to guess: Sequences like abc… Add another word or two."
    let (head, rest) = advice.split_at(1);
    Some(format!("{}: {}", head[0], rest.join(" ")))
}

fn warning_fr(w: zxcvbn::feedback::Warning) -> &'static str {
    use zxcvbn::feedback::Warning as W;
    match w {
        W::StraightRowsOfKeysAreEasyToGuess => "Les rangées de touches sont faciles à deviner.",
        W::ShortKeyboardPatternsAreEasyToGuess => {
            "Les motifs courts sur le clavier sont faciles à deviner."
        }
        W::RepeatsLikeAaaAreEasyToGuess => "Les répétitions comme « aaa » sont faciles à deviner.",
        W::RepeatsLikeAbcAbcAreOnlySlightlyHarderToGuess => {
            "Les répétitions comme « abcabcabc » sont à peine plus difficiles à deviner que « abc »."
        }
        W::ThisIsATop10Password => "C'est l'un des 10 mots de passe les plus courants.",
        W::ThisIsATop100Password => "C'est l'un des 100 mots de passe les plus courants.",
        W::ThisIsACommonPassword => "C'est un mot de passe très courant.",
        W::ThisIsSimilarToACommonlyUsedPassword => "Il ressemble à un mot de passe très utilisé.",
        W::SequencesLikeAbcAreEasyToGuess => "Les suites comme abc ou 6543 sont faciles à deviner.",
        W::RecentYearsAreEasyToGuess => "Les années récentes sont faciles à deviner.",
        W::AWordByItselfIsEasyToGuess => "Un mot seul est facile à deviner.",
        W::DatesAreOftenEasyToGuess => "Les dates sont souvent faciles à deviner.",
        W::NamesAndSurnamesByThemselvesAreEasyToGuess => {
            "Les prénoms et noms seuls sont faciles à deviner."
        }
        W::CommonNamesAndSurnamesAreEasyToGuess => {
            "Les prénoms et noms courants sont faciles à deviner."
        }
    }
}

fn suggestion_fr(s: zxcvbn::feedback::Suggestion) -> &'static str {
    use zxcvbn::feedback::Suggestion as S;
    match s {
        S::UseAFewWordsAvoidCommonPhrases => {
            "Utilisez quelques mots, en évitant les expressions courantes."
        }
        S::NoNeedForSymbolsDigitsOrUppercaseLetters => {
            "Inutile d'ajouter des symboles, des chiffres ou des majuscules."
        }
        S::AddAnotherWordOrTwo => "Ajoutez un mot ou deux : les mots peu courants, c'est mieux.",
        S::CapitalizationDoesntHelpVeryMuch => "Les majuscules n'aident pas beaucoup.",
        S::AllUppercaseIsAlmostAsEasyToGuessAsAllLowercase => {
            "Tout en majuscules est presque aussi facile à deviner que tout en minuscules."
        }
        S::ReversedWordsArentMuchHarderToGuess => {
            "Les mots à l'envers ne sont guère plus difficiles à deviner."
        }
        S::PredictableSubstitutionsDontHelpVeryMuch => {
            "Les substitutions prévisibles comme « @ » pour « a » n'aident pas beaucoup."
        }
        S::UseALongerKeyboardPatternWithMoreTurns => {
            "Utilisez un motif de clavier plus long, avec plus de changements de direction."
        }
        S::AvoidRepeatedWordsAndCharacters => "Évitez les mots et caractères répétés.",
        S::AvoidSequences => "Évitez les suites.",
        S::AvoidRecentYears => "Évitez les années récentes.",
        S::AvoidYearsThatAreAssociatedWithYou => "Évitez les années qui vous sont associées.",
        S::AvoidDatesAndYearsThatAreAssociatedWithYou => {
            "Évitez les dates et années qui vous sont associées."
        }
    }
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
    fn weak_passwords_are_refused_with_advice_in_the_learners_language() {
        let en = |p: &str, email: &str| policy(p, email, Lang::En);
        assert!(en("short", "a@b.c").is_some_and(|m| m.contains("at least 10")));
        for weak in [
            "1111111234",
            "aaaaaaabcd",
            "aaaaaaaaaaaa",
            "Password123",
            "qwertyuiop",
        ] {
            let why = en(weak, "a@b.c").unwrap_or_else(|| panic!("{weak} is weak"));
            assert!(
                why.starts_with("this password is too easy to guess: "),
                "{why}"
            );
        }
        assert!(
            en("1111111234", "a@b.c").is_some_and(|m| m.contains("Sequences like abc")),
            "the estimator says why"
        );
        assert!(en("marie.curie-1867", "marie.curie@example.com").is_some());
        assert_eq!(en("correct horse battery", "a@b.c"), None);
        assert_eq!(en("a new battery staple", "a@b.c"), None);
        let fr = policy("aaaaaaabcd", "a@b.c", Lang::Fr).unwrap();
        assert!(
            fr.starts_with("ce mot de passe est trop facile à deviner : ")
                || fr.starts_with("ce mot de passe est trop facile à deviner: "),
            "{fr}"
        );
        assert!(fr.contains("Les suites comme abc"), "{fr}");
        assert!(policy("court", "a@b.c", Lang::Fr).is_some_and(|m| m.contains("au moins 10")));
    }

    #[test]
    fn the_language_follows_accept_language() {
        assert_eq!(Lang::pick(Some("fr-CA,fr;q=0.9,en;q=0.8")), Lang::Fr);
        assert_eq!(Lang::pick(Some("de-DE, en;q=0.5")), Lang::En);
        assert_eq!(Lang::pick(Some("de-DE, fr;q=0.5")), Lang::Fr);
        assert_eq!(Lang::pick(None), Lang::En);
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
