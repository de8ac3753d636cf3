//! What deletions leave for others to finish, on SQLite and PostgreSQL: the chunks the vector
//! store must forget, and the media and contacts of a deleted channel.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::common::{Backend, tenant_with_channel, text};
use coach_gateway::store::{Page, StoreError};
use coach_gateway::tenancy::SystemScope;

const PAGE: Page = Page {
    before: None,
    limit: 100,
};

against_every_backend!(
    deletions_record_the_chunks_the_vector_store_must_forget,
    deleting_a_channel_takes_the_contacts_only_it_knew,
);

/// A deleted document and an erased tenant each leave a record of the chunks to remove, written
/// with the deletion (so a vector store that is down, or models that are missing, delay the
/// removal but never lose it), until the removal is recorded as done.
async fn deletions_record_the_chunks_the_vector_store_must_forget(b: &Backend) {
    use coach_gateway::store::documents::{NewDocument, VectorErasure};
    let store = b.store.as_ref();
    let (scope, _) = tenant_with_channel(store, "forget").await;
    let (other, _) = tenant_with_channel(store, "keep").await;
    let sys = SystemScope::new("test");
    let new = |title: &str| NewDocument {
        title: title.into(),
        filename: None,
        source_url: None,
        kind: "text".into(),
        content: b"some text".to_vec(),
        sha256: "0".repeat(64),
    };
    let doc = store.create_document(&scope, new("a")).await.unwrap();
    let kept = store.create_document(&other, new("b")).await.unwrap();
    let mine = |all: Vec<VectorErasure>| -> Vec<(bool, Option<uuid::Uuid>)> {
        all.into_iter()
            .filter(|e| e.tenant_id == scope.tenant_id() || e.tenant_id == other.tenant_id())
            .map(|e| (e.tenant_id == scope.tenant_id(), e.document_id))
            .collect()
    };
    assert_eq!(
        mine(store.vector_erasures(&sys, 1000).await.unwrap()),
        vec![]
    );
    assert!(
        matches!(
            store.delete_document(&other, doc.id).await,
            Err(StoreError::NotFound(_))
        ),
        "another tenant's document is not deleted, nothing is recorded"
    );
    store.delete_document(&scope, doc.id).await.unwrap();
    store.erase_tenant(&scope).await.unwrap();
    let pending: Vec<VectorErasure> = store
        .vector_erasures(&sys, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.tenant_id == scope.tenant_id() || e.tenant_id == other.tenant_id())
        .collect();
    assert_eq!(
        pending
            .iter()
            .map(|e| (e.tenant_id == scope.tenant_id(), e.document_id))
            .collect::<Vec<_>>(),
        vec![(true, Some(doc.id)), (true, None)],
        "oldest first; the tenant's record survives its erasure"
    );
    for e in &pending {
        store.vector_erasure_done(&sys, e.id).await.unwrap();
    }
    assert_eq!(
        mine(store.vector_erasures(&sys, 1000).await.unwrap()),
        vec![]
    );
    assert_eq!(store.document(&other, kept.id).await.unwrap().id, kept.id);
}

/// Deleting a channel deletes its conversations and messages, names the media files they had
/// (the caller removes them) and deletes the contacts left without any identity; a contact of
/// another channel stays.
async fn deleting_a_channel_takes_the_contacts_only_it_knew(b: &Backend) {
    use coach_gateway::store::NewChannel;
    let store = b.store.as_ref();
    let (scope, gone) = tenant_with_channel(store, "channels").await;
    let kept = store
        .create_channel(
            &scope,
            NewChannel {
                kind: coach_connector_api::ChannelKind::Telegram,
                name: "kept".into(),
                config: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
    store
        .ingest(
            &scope,
            gone,
            vec![text("g1", "alice", "on the channel that goes")],
        )
        .await
        .unwrap();
    store
        .ingest(
            &scope,
            kept.id,
            vec![text("k1", "carol", "on the channel that stays")],
        )
        .await
        .unwrap();
    let contacts = store.contacts(&scope, None, 10).await.unwrap();
    let id_of = |who: &str| {
        contacts
            .iter()
            .find(|c| c.identities[0].external_id == who)
            .unwrap()
            .id
    };
    let (alice, carol) = (id_of("alice"), id_of("carol"));
    let conversation = store
        .conversations(&scope, PAGE, Default::default())
        .await
        .unwrap();
    let alices = conversation
        .iter()
        .find(|c| c.contact_id == alice)
        .unwrap()
        .id;
    let message = store
        .messages(&scope, alices, None, 10, false)
        .await
        .unwrap()[0]
        .id;
    store
        .attach_media(
            &scope,
            message,
            serde_json::json!({ "mime": "image/png", "bytes": 3 }),
        )
        .await
        .unwrap();
    let removal = store.delete_channel(&scope, gone).await.unwrap();
    assert_eq!(removal.media, vec![(alice, message)]);
    assert_eq!(removal.orphans, vec![alice]);
    let left: Vec<_> = store
        .contacts(&scope, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, vec![carol]);
    assert!(matches!(
        store.delete_channel(&scope, gone).await,
        Err(StoreError::NotFound(_))
    ));
}
