//! The JWT signing keys at rest, on SQLite and PostgreSQL: sealed with the master key, old
//! keys sealed at start, and a wrong master key refused.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;
use axum::http::StatusCode;
use coach_gateway::config::Config;
use coach_gateway::tenancy::SystemScope;

against_every_backend!(signing_keys_are_sealed_and_need_their_master_key,);

/// Private signing keys are stored sealed; one stored in the clear by an earlier version is
/// sealed at start (once), and a gateway with another master key refuses them, naming
/// `secrets.master_key`, instead of minting new keys.
async fn signing_keys_are_sealed_and_need_their_master_key(b: &Backend) {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let sys = SystemScope::new("test");
    let legacy = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let der = legacy.to_pkcs8_der().unwrap().as_bytes().to_vec();
    b.store
        .add_signing_key(
            &sys,
            coach_gateway::store::SigningKeyRecord {
                kid: "legacy".into(),
                private_der: der.clone(),
                public_raw: legacy.verifying_key().to_bytes().to_vec(),
                created_at: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    let app = app(b);
    assert_eq!(app.state.auth.tokens.seal_stored_keys().await.unwrap(), 1);
    assert_eq!(
        app.state.auth.tokens.seal_stored_keys().await.unwrap(),
        0,
        "sealing is idempotent"
    );
    let stored = b.store.signing_keys(&sys).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].private_der.starts_with(b"cgs1"));
    assert!(
        !stored[0].private_der.windows(der.len()).any(|w| w == der),
        "the private key is not stored in the clear"
    );
    // The sealed key signs: a login works, and a rotation adds a sealed key.
    let pair = app.register("ana@example.com").await;
    app.expect(StatusCode::OK, "GET", "/v1/me", Some(token(&pair)), None)
        .await;
    app.state.auth.tokens.rotate().await.unwrap();
    let stored = b.store.signing_keys(&sys).await.unwrap();
    assert!(stored.iter().all(|k| k.private_der.starts_with(b"cgs1")));
    app.expect(StatusCode::OK, "GET", "/v1/me", Some(token(&pair)), None)
        .await;

    let other = app_sealed_with(
        b.store.clone(),
        Config::default(),
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
    );
    let refused = other
        .state
        .auth
        .tokens
        .seal_stored_keys()
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("secrets.master_key"), "{refused}");
    assert_eq!(
        b.store.signing_keys(&sys).await.unwrap().len(),
        2,
        "no key was minted"
    );
}
