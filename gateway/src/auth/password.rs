//! Password hashing with Argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane), on the
//! blocking pool behind a semaphore so logins never starve request handling.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

/// A hash of a random password nobody knows, verified when the e-mail is unknown so that both
/// failures cost the same. Computed once, on the blocking pool.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 32];
        let _ = getrandom::fill(&mut secret);
        hash_blocking(&secret).unwrap_or_default()
    })
}

fn hash_blocking(password: &[u8]) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn argon2() -> Argon2<'static> {
    // OWASP password storage cheat sheet: m=19456 KiB, t=2, p=1.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Hasher {
    /// A hasher running at most `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Run `f` on the blocking pool; `None` when the runtime is shutting down and cancelled it.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let _permit = self.permits.acquire().await;
        match tokio::task::spawn_blocking(f).await {
            Ok(v) => Some(v),
            // A panic inside the hash would be a bug in argon2: keep it a panic.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }

    /// The PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, String> {
        self.blocking(move || hash_blocking(password.as_bytes()))
            .await
            .unwrap_or_else(|| Err("the gateway is shutting down".into()))
    }

    /// Whether `password` matches `hash`; `None` verifies against a dummy hash (same cost).
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        self.blocking(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && known
        })
        .await
        // Cancelled at shutdown: the check fails closed.
        .unwrap_or(false)
    }
}

/// Why a password is refused, or `None` if it is strong enough.
pub fn weakness(password: &str, email: &str) -> Option<String> {
    if password.chars().count() < 10 {
        return Some("use at least 10 characters".into());
    }
    if password.chars().count() > 1024 {
        return Some("use at most 1024 characters".into());
    }
    let local = email.split('@').next().unwrap_or_default();
    let estimate = zxcvbn::zxcvbn(password, &[email, local]);
    if (estimate.score() as u8) < 3 {
        let hint = estimate
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "it is too easy to guess".into());
        return Some(format!("choose a stronger password: {hint}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_fail_the_same_way() {
        let hasher = Hasher::new(1);
        let hash = hasher
            .hash("correct horse battery staple".into())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            hasher
                .verify("correct horse battery staple".into(), Some(hash.clone()))
                .await
        );
        assert!(!hasher.verify("wrong".into(), Some(hash)).await);
        assert!(!hasher.verify("anything".into(), None).await);
        assert!(PasswordHash::new(dummy_hash()).is_ok());
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        assert!(weakness("short", "a@b.c").is_some());
        assert!(weakness("password123", "a@b.c").is_some());
        assert!(weakness("annasmith2024", "annasmith2024@example.com").is_some());
        assert!(weakness("violet-quarry-Tundra-88", "a@b.c").is_none());
    }
}
