//! Access tokens: JWTs signed with Ed25519 (`EdDSA`), keys identified by `kid` and stored in the
//! database so every gateway process signs and verifies with the same set. The newest key
//! signs; all known keys verify, so adding a key rotates without logging anyone out. Only
//! `EdDSA` is accepted: `alg: none`, HMAC confusion and foreign keys fail verification.
//! Private keys are stored sealed with the master key (`secrets.master_key`), like channel
//! secrets; keys stored before that are sealed at start ([`Tokens::seal_stored_keys`]), and a
//! master key that cannot open them stops the gateway instead of minting new ones.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use coach_connector_api::TenantId;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::secrets::SecretBox;
use crate::store::{Role, SigningKeyRecord, Store, StoreError, UserId};
use crate::tenancy::SystemScope;

/// What an access token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user.
    pub sub: Uuid,
    /// The tenant the token acts for.
    pub tid: Uuid,
    /// The user's role in that tenant when the token was issued.
    pub role: Role,
    /// The session (refresh-token family); logout revokes it.
    pub sid: Uuid,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
    /// Whether the user operates the gateway.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pa: bool,
}

impl Claims {
    /// The user.
    pub fn user(&self) -> UserId {
        UserId(self.sub)
    }

    /// The tenant.
    pub fn tenant(&self) -> TenantId {
        TenantId(self.tid)
    }
}

struct Keys {
    signing: Option<(String, EncodingKey)>,
    verifying: HashMap<String, DecodingKey>,
}

/// Signs and verifies access tokens.
#[derive(Clone)]
pub struct Tokens {
    store: Arc<dyn Store>,
    secrets: SecretBox,
    keys: Arc<RwLock<Keys>>,
    issuer: String,
    ttl_secs: i64,
    last_reload: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// Unknown key ids trigger at most one key reload per this interval, so forged `kid`s cannot
/// turn every request into a database query.
const RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a token was refused (never shown in detail to clients).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Malformed, badly signed, expired, wrong issuer or audience, unknown key.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The key store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn new_key(secrets: &SecretBox) -> Result<SigningKeyRecord, StoreError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| StoreError::Unavailable(format!("randomness: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| StoreError::Corrupt(format!("pkcs8: {e}")))?;
    Ok(SigningKeyRecord {
        kid: Uuid::now_v7().simple().to_string(),
        private_der: secrets.seal_bytes(der.as_bytes()).map_err(unopenable)?,
        public_raw: key.verifying_key().to_bytes().to_vec(),
        created_at: Utc::now(),
    })
}

/// The stored signing keys do not open with this master key.
fn unopenable(error: crate::secrets::SecretsError) -> StoreError {
    StoreError::Corrupt(format!(
        "the JWT signing keys in the database cannot be opened ({error}): start the gateway with \
         the secrets.master_key (or data_dir/master.key) that sealed them"
    ))
}

impl Tokens {
    /// Tokens backed by the keys in `store`, loaded on first use (the database may not be
    /// reachable yet when the gateway starts).
    pub fn new(store: Arc<dyn Store>, secrets: SecretBox, issuer: String, ttl_secs: u64) -> Self {
        Self {
            store,
            secrets,
            keys: Arc::new(RwLock::new(Keys {
                signing: None,
                verifying: HashMap::new(),
            })),
            issuer,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(900),
            last_reload: Arc::default(),
        }
    }

    /// Load the shared keys, creating the first one if there is none yet.
    async fn ensure_keys(&self) -> Result<(), StoreError> {
        if self.read().signing.is_some() {
            return Ok(());
        }
        self.reload().await?;
        if self.read().signing.is_none() {
            self.rotate().await?;
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-read the keys (another process may have rotated).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let records = self
            .store
            .signing_keys(&SystemScope::new("load signing keys"))
            .await?;
        let signing = match records.first() {
            Some(r) => {
                let der = self.open(r)?;
                Some((r.kid.clone(), EncodingKey::from_ed_der(&der)))
            }
            None => None,
        };
        let verifying = records
            .iter()
            .filter(|r| r.public_raw.len() == 32)
            .map(|r| (r.kid.clone(), DecodingKey::from_ed_der(&r.public_raw)))
            .collect();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Keys { signing, verifying };
        Ok(())
    }

    fn may_reload(&self) -> bool {
        let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < RELOAD_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// The private key of `record` in DER (as stored before keys were sealed, or opened).
    fn open(&self, record: &SigningKeyRecord) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .secrets
            .open_bytes(&record.private_der)
            .map_err(unopenable)?
            .unwrap_or_else(|| record.private_der.clone()))
    }

    /// Seal the private keys stored before they were sealed (idempotent), then load the keys:
    /// an error when the master key cannot open them. Returns how many were sealed now.
    pub async fn seal_stored_keys(&self) -> Result<usize, StoreError> {
        let sys = SystemScope::new("seal signing keys");
        let mut sealed = 0;
        for record in self.store.signing_keys(&sys).await? {
            if self
                .secrets
                .open_bytes(&record.private_der)
                .map_err(unopenable)?
                .is_none()
            {
                let stored = self
                    .secrets
                    .seal_bytes(&record.private_der)
                    .map_err(unopenable)?;
                self.store
                    .seal_signing_key(&sys, record.kid.clone(), record.private_der, stored)
                    .await?;
                sealed += 1;
            }
        }
        self.reload().await?;
        Ok(sealed)
    }

    /// Add a new signing key; tokens signed with older keys stay valid until they expire.
    pub async fn rotate(&self) -> Result<(), StoreError> {
        self.store
            .add_signing_key(
                &SystemScope::new("rotate signing key"),
                new_key(&self.secrets)?,
            )
            .await?;
        self.reload().await
    }

    /// The access-token lifetime in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Issue an access token.
    pub async fn issue(
        &self,
        user: UserId,
        tenant: TenantId,
        role: Role,
        session: Uuid,
        platform_admin: bool,
    ) -> Result<String, TokenError> {
        self.ensure_keys().await?;
        let now = Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.issuer.clone(),
            sub: user.0,
            tid: tenant.0,
            role,
            sid: session,
            iat: now,
            exp: now + self.ttl_secs,
            pa: platform_admin,
        };
        let keys = self.read();
        let (kid, key) = keys
            .signing
            .as_ref()
            .ok_or_else(|| TokenError::Invalid("no signing key".into()))?;
        let header = Header {
            kid: Some(kid.clone()),
            ..Header::new(Algorithm::EdDSA)
        };
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Verify a token's signature, algorithm, issuer, audience and expiry.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Invalid("no kid".into()))?;
        self.ensure_keys().await?;
        if !self.read().verifying.contains_key(&kid) && self.may_reload() {
            // Perhaps another process rotated: look once more before refusing.
            self.reload().await?;
        }
        let keys = self.read();
        let key = keys
            .verifying
            .get(&kid)
            .ok_or_else(|| TokenError::Invalid("unknown kid".into()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }
}
