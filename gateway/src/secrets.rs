//! Secrets at rest: channel tokens and app secrets are sealed with ChaCha20-Poly1305 under a
//! master key from configuration (or `data_dir/master.key`, created with mode 0600 on first
//! run) before they reach the database, and opened only when a connector needs them.
//! A sealed value is `{"$enc": base64(nonce || ciphertext)}` in place of the string; sealed
//! bytes (the JWT signing keys' private halves) are `cgs1 || nonce || ciphertext`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde_json::Value;

/// Why secrets cannot be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The configured or stored key is not 32 bytes of base64.
    #[error("secrets.master_key: {0}")]
    Key(String),
    /// The key file could not be read or written.
    #[error("master key file {path}: {error}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        error: String,
    },
    /// A sealed value does not open with this key (another key, or tampering).
    #[error("a stored secret cannot be decrypted with this master key")]
    Open,
}

/// What sealed bytes start with (no PKCS#8 document does: those start with a DER sequence).
const SEALED_BYTES: &[u8] = b"cgs1";

/// Whether a configuration key names a secret (tokens, secrets, passwords, keys).
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["token", "secret", "password", "key"]
        .iter()
        .any(|s| key.contains(s))
}

/// Seals and opens secret values.
#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
    /// A key for signing (widget visitor tokens), derived from the master key so it never
    /// doubles as the encryption key.
    signing: std::sync::Arc<[u8; 32]>,
    /// Names the key without revealing it (backups record which key sealed their secrets).
    fingerprint: [u8; 8],
}

impl SecretBox {
    /// A box for the configured key, or the key in `data_dir/master.key` (created if absent).
    pub fn load(configured: &str, data_dir: &Path) -> Result<Self, SecretsError> {
        let encoded = if configured.is_empty() {
            let path = data_dir.join("master.key");
            let file_error = |e: std::io::Error| SecretsError::File {
                path: path.display().to_string(),
                error: e.to_string(),
            };
            match std::fs::read_to_string(&path) {
                Ok(text) => text.trim().to_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let mut key = [0u8; 32];
                    getrandom::fill(&mut key).map_err(|e| SecretsError::Key(e.to_string()))?;
                    let text = STANDARD.encode(key);
                    crate::files::private_dir(data_dir).map_err(file_error)?;
                    write_private(&path, &text).map_err(file_error)?;
                    tracing::info!(path = %path.display(), "created a new master key for secrets");
                    text
                }
                Err(e) => return Err(file_error(e)),
            }
        } else {
            configured.trim().to_owned()
        };
        let key = STANDARD
            .decode(&encoded)
            .map_err(|e| SecretsError::Key(format!("not base64: {e}")))?;
        if key.len() != 32 {
            return Err(SecretsError::Key(format!(
                "{} bytes; expected 32",
                key.len()
            )));
        }
        use sha2::Digest as _;
        let mut derive = sha2::Sha256::new();
        derive.update(b"coach-gateway signing key v1\0");
        derive.update(&key);
        let mut name = sha2::Sha256::new();
        name.update(b"coach-gateway key fingerprint v1\0");
        name.update(&key);
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&name.finalize()[..8]);
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            signing: std::sync::Arc::new(derive.finalize().into()),
            fingerprint,
        })
    }

    /// The configured key or the one in `data_dir/master.key`, `None` when there is neither
    /// (where [`SecretBox::load`] would make a new one).
    pub fn existing(configured: &str, data_dir: &Path) -> Result<Option<Self>, SecretsError> {
        if configured.trim().is_empty() && !data_dir.join("master.key").exists() {
            return Ok(None);
        }
        Self::load(configured, data_dir).map(Some)
    }

    /// A one-way name of the master key (16 hex digits), safe to print and store: two boxes
    /// with the same fingerprint open each other's secrets.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.fingerprint)
    }

    /// The key for signing tokens the gateway hands out (widget visitors), derived from the
    /// master key.
    pub fn signing_key(&self) -> &[u8] {
        self.signing.as_slice()
    }

    /// `nonce || ciphertext` of `plain`.
    fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| SecretsError::Key(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .map_err(|_| SecretsError::Open)?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(bytes)
    }

    /// What [`Self::encrypt`] sealed.
    fn decrypt(&self, bytes: &[u8]) -> Result<Vec<u8>, SecretsError> {
        if bytes.len() < 12 {
            return Err(SecretsError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretsError::Open)
    }

    fn seal_str(&self, plain: &str) -> Result<Value, SecretsError> {
        let bytes = self.encrypt(plain.as_bytes())?;
        Ok(serde_json::json!({ "$enc": STANDARD.encode(bytes) }))
    }

    fn open_value(&self, sealed: &str) -> Result<String, SecretsError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SecretsError::Open)?;
        String::from_utf8(self.decrypt(&bytes)?).map_err(|_| SecretsError::Open)
    }

    /// `plain` sealed for storage as bytes.
    pub fn seal_bytes(&self, plain: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let mut sealed = SEALED_BYTES.to_vec();
        sealed.extend(self.encrypt(plain)?);
        Ok(sealed)
    }

    /// What [`Self::seal_bytes`] stored, opened; `None` for bytes stored before they were
    /// sealed (the caller seals them now).
    pub fn open_bytes(&self, stored: &[u8]) -> Result<Option<Vec<u8>>, SecretsError> {
        match stored.strip_prefix(SEALED_BYTES) {
            Some(sealed) => self.decrypt(sealed).map(Some),
            None => Ok(None),
        }
    }

    /// Seal every string under a secret-named key, at any depth.
    pub fn seal(&self, value: &mut Value) -> Result<(), SecretsError> {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match v {
                        Value::String(s) if is_secret(k) => *v = self.seal_str(s)?,
                        other => self.seal(other)?,
                    }
                }
            }
            Value::Array(items) => items.iter_mut().try_for_each(|v| self.seal(v))?,
            _ => {}
        }
        Ok(())
    }

    /// Open every sealed value, at any depth.
    pub fn open(&self, value: &mut Value) -> Result<(), SecretsError> {
        match value {
            Value::Object(map) => {
                if let (1, Some(Value::String(sealed))) = (map.len(), map.get("$enc")) {
                    *value = Value::String(self.open_value(sealed)?);
                    return Ok(());
                }
                map.values_mut().try_for_each(|v| self.open(v))?;
            }
            Value::Array(items) => items.iter_mut().try_for_each(|v| self.open(v))?,
            _ => {}
        }
        Ok(())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_sealed_opened_and_bound_to_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let sb = SecretBox::load("", dir.path()).unwrap();
        let original = serde_json::json!({ "phone_number_id": "123", "access_token": "EAAG-secret",
            "nested": { "app_secret": "s3" }, "list": [{ "bot_token": "1:AA" }] });
        let mut sealed = original.clone();
        sb.seal(&mut sealed).unwrap();
        let text = sealed.to_string();
        assert!(
            !text.contains("EAAG-secret") && !text.contains("s3\"") && !text.contains("1:AA"),
            "{text}"
        );
        assert_eq!(sealed["phone_number_id"], "123");
        // The key file is reused: a restart opens what the last run sealed.
        let again = SecretBox::load("", dir.path()).unwrap();
        let mut opened = sealed.clone();
        again.open(&mut opened).unwrap();
        assert_eq!(opened, original);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let key = b"\x30\x2e private key bytes";
        let stored = sb.seal_bytes(key).unwrap();
        assert!(!stored.windows(7).any(|w| w == b"private"), "sealed");
        assert_eq!(
            again.open_bytes(&stored).unwrap().as_deref(),
            Some(&key[..])
        );
        assert_eq!(again.open_bytes(key).unwrap(), None, "not sealed yet");
        let other = SecretBox::load(&STANDARD.encode([7u8; 32]), dir.path()).unwrap();
        assert!(matches!(other.open_bytes(&stored), Err(SecretsError::Open)));
        assert!(matches!(
            other.open(&mut sealed.clone()),
            Err(SecretsError::Open)
        ));
        assert!(matches!(
            SecretBox::load("c2hvcnQ=", dir.path()),
            Err(SecretsError::Key(_))
        ));
    }
}
