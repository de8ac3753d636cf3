//! Who a visitor is: an anonymous visitor token signed by the gateway, or an identity signed by
//! the creator's own site (so the same person finds their conversation on every device).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::frames::Identity;

type HmacSha256 = Hmac<Sha256>;

/// How long a site's identity signature stays valid after it was issued.
pub const IDENTITY_MAX_AGE_SECS: i64 = 24 * 3600;

/// Why a signature could not be made (HMAC takes keys of any length, so in practice never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyError;

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the signing key was refused")
    }
}

impl std::error::Error for KeyError {}

fn mac(key: &[u8], parts: &[&str]) -> Result<HmacSha256, KeyError> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| KeyError)?;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b":");
        }
        mac.update(part.as_bytes());
    }
    Ok(mac)
}

/// How long a file link given to a visitor stays valid (history re-signs it on each connection).
pub const FILE_LINK_MAX_AGE_SECS: i64 = 12 * 3600;

/// The signature of a link to the file of `message` in `channel`, valid until `expires`
/// (Unix seconds): the link is the capability, so no visitor token travels in a URL.
pub fn file_signature(
    key: &[u8],
    channel: &str,
    message: &str,
    expires: i64,
) -> Result<String, KeyError> {
    let sig = mac(key, &["file", channel, message, &expires.to_string()])?
        .finalize()
        .into_bytes();
    Ok(hex::encode(sig))
}

/// Whether `signature` signs that file link and it has not expired at `now` (constant time).
pub fn verify_file_signature(
    key: &[u8],
    channel: &str,
    message: &str,
    expires: i64,
    signature: &str,
    now: i64,
) -> bool {
    if now > expires {
        return false;
    }
    let Ok(sig) = hex::decode(signature) else {
        return false;
    };
    mac(key, &["file", channel, message, &expires.to_string()])
        .is_ok_and(|m| m.verify_slice(&sig).is_ok())
}

/// A token binding `visitor` to `channel`: `v1.{visitor}.{hex hmac}`.
pub fn visitor_token(key: &[u8], channel: &str, visitor: &str) -> Result<String, KeyError> {
    let sig = mac(key, &["visitor", channel, visitor])?
        .finalize()
        .into_bytes();
    Ok(format!("v1.{visitor}.{}", hex::encode(sig)))
}

/// The visitor a token names, if it was signed by `key` for `channel` (checked in constant
/// time).
pub fn verify_visitor_token(key: &[u8], channel: &str, token: &str) -> Option<String> {
    let rest = token.strip_prefix("v1.")?;
    let (visitor, sig) = rest.rsplit_once('.')?;
    if visitor.is_empty() || visitor.len() > 200 {
        return None;
    }
    let sig = hex::decode(sig).ok()?;
    mac(key, &["visitor", channel, visitor])
        .ok()?
        .verify_slice(&sig)
        .ok()
        .map(|()| visitor.to_string())
}

/// The signature a creator's site computes for `user_id` at `issued_at` (documented for
/// creators; also used by tests).
pub fn sign_identity(secret: &str, user_id: &str, issued_at: i64) -> Result<String, KeyError> {
    let sig = mac(secret.as_bytes(), &[user_id, &issued_at.to_string()])?
        .finalize()
        .into_bytes();
    Ok(hex::encode(sig))
}

/// Checks a site's identity at `now` (Unix seconds); the site's user id when valid.
pub fn verify_identity(secret: &str, identity: &Identity, now: i64) -> Result<String, String> {
    if identity.user_id.is_empty() || identity.user_id.len() > 128 {
        return Err("identity.user_id: 1-128 bytes".into());
    }
    let age = now - identity.issued_at;
    if !(-300..=IDENTITY_MAX_AGE_SECS).contains(&age) {
        return Err("identity: the signature has expired; sign it again on your site".into());
    }
    let sig =
        hex::decode(&identity.signature).map_err(|_| "identity.signature: not hex".to_string())?;
    mac(
        secret.as_bytes(),
        &[&identity.user_id, &identity.issued_at.to_string()],
    )
    .map_err(|e| e.to_string())?
    .verify_slice(&sig)
    .map_err(|_| "identity: the signature does not match this channel's secret".to_string())?;
    Ok(identity.user_id.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_channel_and_key() {
        let token = visitor_token(b"key", "chan-a", "vis-1").unwrap();
        assert_eq!(
            verify_visitor_token(b"key", "chan-a", &token).as_deref(),
            Some("vis-1")
        );
        assert_eq!(verify_visitor_token(b"key", "chan-b", &token), None);
        assert_eq!(verify_visitor_token(b"other", "chan-a", &token), None);
        let forged = token.replace("vis-1", "vis-2");
        assert_eq!(verify_visitor_token(b"key", "chan-a", &forged), None);
        assert_eq!(verify_visitor_token(b"key", "chan-a", "v1.x"), None);
    }

    #[test]
    fn identities_expire_and_need_the_channel_secret() {
        let now = 1_800_000_000;
        let identity = |issued_at: i64, secret: &str| Identity {
            user_id: "user-42".into(),
            issued_at,
            signature: sign_identity(secret, "user-42", issued_at).unwrap(),
            name: None,
        };
        assert_eq!(
            verify_identity("s3cret", &identity(now - 60, "s3cret"), now).as_deref(),
            Ok("user-42")
        );
        assert!(verify_identity("s3cret", &identity(now - 60, "wrong"), now).is_err());
        let old = identity(now - IDENTITY_MAX_AGE_SECS - 1, "s3cret");
        assert!(
            verify_identity("s3cret", &old, now)
                .unwrap_err()
                .contains("expired")
        );
    }
}
