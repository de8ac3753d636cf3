#![allow(clippy::unwrap_used, missing_docs)]
//! The knowledge base through the admin API, with the real models: upload, background
//! ingestion with progress, hybrid search, a streamed cited answer, re-index and delete, and
//! clear errors for files that cannot be used.

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

const GUIDE: &[u8] = b"# Sleep guide\n\n## Evening routine\n\nDim the lights one hour before bed. \
Keep the bedroom cool, around 18 degrees Celsius, and dark.\n\n## Caffeine\n\n\
Stop drinking coffee after 2 pm: caffeine stays in the body for about six hours.\n";

/// The raw text of a `POST /v1/chat` answer (server-sent events).
async fn chat(app: &App, token: &str, question: &str) -> String {
    let req = Request::builder()
        .method("POST")
        .uri("/v1/chat")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(json!({ "question": question }).to_string()))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The JSON data of each event of `kind` in an SSE body.
fn events(sse: &str, kind: &str) -> Vec<Value> {
    sse.split("\n\n")
        .filter(|block| block.lines().any(|l| l == format!("event: {kind}")))
        .filter_map(|block| {
            block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str(d).ok())
        })
        .collect()
}

async fn upload_search_answer_reindex_delete(b: &Backend) {
    let data = tempfile::tempdir().unwrap();
    let app = app_with_brain(b, data.path()).await;
    let owner = app.register("kb@example.com").await;
    let t = token(&owner);

    let (status, doc) = app.upload(t, "sleep.md", "text/markdown", GUIDE).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    assert_eq!(doc["status"], "queued");
    assert_eq!(doc["kind"], "markdown");
    let id = doc["id"].as_str().unwrap().to_owned();
    app.ingest_all().await;
    let (_, doc) = app
        .call("GET", &format!("/v1/documents/{id}"), Some(t), None)
        .await;
    assert_eq!(doc["status"], "ready", "{doc}");
    assert_eq!(doc["progress"], 1.0);
    let first_chunks = doc["chunks"].as_i64().unwrap();
    assert!(first_chunks >= 1);

    let (status, found) = app
        .call(
            "POST",
            "/v1/search",
            Some(t),
            Some(json!({ "query": "when should I stop coffee?" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["confident"], true, "{found}");
    let best = found["passages"][0]["text"].as_str().unwrap();
    assert!(best.contains("coffee"), "{found}");

    let sse = chat(&app, t, "When should I stop drinking coffee?").await;
    let tokens: String = events(&sse, "token")
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(!tokens.trim().is_empty(), "{sse}");
    let citations = &events(&sse, "citations")[0];
    assert_eq!(citations[0]["title"], "sleep.md", "{sse}");
    assert_eq!(citations[0]["document_id"], id.as_str());
    let done = &events(&sse, "done")[0];
    assert_eq!(done["confident"], true);
    assert!(done["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    // Nothing relevant: the coach says it does not know, without citations.
    let sse = chat(
        &app,
        t,
        "What is the airspeed of an unladen swallow in Peru?",
    )
    .await;
    assert_eq!(events(&sse, "done")[0]["confident"], false, "{sse}");
    assert_eq!(events(&sse, "citations")[0], json!([]));

    // The model's tokens are metered for the tenant: the first answer only (the second never
    // reached the model).
    let (_, stats) = app.call("GET", "/v1/analytics?days=1", Some(t), None).await;
    let usage = &stats["usage"][0];
    assert_eq!(usage["answers"], 1, "{stats}");
    assert_eq!(
        usage["completion_tokens"], done["usage"]["completion_tokens"],
        "{stats}"
    );
    assert_eq!(usage["prompt_tokens"], done["usage"]["prompt_tokens"]);

    // Re-index: a new version replaces the old one; search keeps working throughout.
    // The tenant's own chunking applies to what is indexed next.
    for bad in [
        json!({ "chunk_tokens": 1000, "chunk_overlap": 2 }),
        json!({ "chunk_tokens": 64, "chunk_overlap": 32 }),
    ] {
        let (status, problem) = app
            .call(
                "PATCH",
                "/v1/tenant",
                Some(t),
                Some(json!({ "chunking": bad })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    }
    let small = json!({ "chunk_tokens": 16, "chunk_overlap": 2 });
    let (status, tenant) = app
        .call(
            "PATCH",
            "/v1/tenant",
            Some(t),
            Some(json!({ "chunking": small })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tenant}");
    assert_eq!(tenant["chunking"], small);
    let (status, doc) = app
        .call(
            "POST",
            &format!("/v1/documents/{id}/reindex"),
            Some(t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["live_version"], 1);
    let (_, found) = app
        .call(
            "POST",
            "/v1/search",
            Some(t),
            Some(json!({ "query": "coffee caffeine" })),
        )
        .await;
    assert!(
        !found["passages"].as_array().unwrap().is_empty(),
        "old version still served"
    );
    app.ingest_all().await;
    let (_, doc) = app
        .call("GET", &format!("/v1/documents/{id}"), Some(t), None)
        .await;
    assert_eq!(doc["live_version"], 2);
    assert!(
        doc["chunks"].as_i64().unwrap() > first_chunks,
        "smaller chunks, more of them: {doc}"
    );
    let (_, tenant) = app
        .call(
            "PATCH",
            "/v1/tenant",
            Some(t),
            Some(json!({ "chunking": null })),
        )
        .await;
    assert!(tenant["chunking"].is_null(), "{tenant}");
    let (_, found) = app
        .call(
            "POST",
            "/v1/search",
            Some(t),
            Some(json!({ "query": "coffee caffeine", "limit": 50 })),
        )
        .await;
    let passages = found["passages"].as_array().unwrap();
    assert!(!passages.is_empty());
    assert!(passages.iter().all(|p| p["version"] == 2), "{found}");

    let (status, _) = app
        .call("DELETE", &format!("/v1/documents/{id}"), Some(t), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, found) = app
        .call(
            "POST",
            "/v1/search",
            Some(t),
            Some(json!({ "query": "coffee caffeine" })),
        )
        .await;
    assert_eq!(found["passages"], json!([]), "{found}");
    let brain = app.state.knowledge.get().unwrap();
    let tenant = coach_brain::Tenant::scoped(owner["tenant_id"].as_str().unwrap().parse().unwrap());
    assert_eq!(
        brain.vectors.count(tenant).await.unwrap(),
        0,
        "every chunk removed"
    );
}

async fn unusable_files_get_clear_errors_and_leave_nothing(b: &Backend) {
    let data = tempfile::tempdir().unwrap();
    let app = app_with_brain(b, data.path()).await;
    let owner = app.register("bad@example.com").await;
    let t = token(&owner);

    // Not a document at all: refused at upload, nothing stored.
    let (status, problem) = app
        .upload(
            t,
            "tool.exe",
            "application/octet-stream",
            &[0x4d, 0x5a, 0x90, 0x00, 0xff, 0xfe, 0x00],
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{problem}");
    assert!(problem["detail"].as_str().unwrap().len() > 10, "{problem}");
    let (status, problem) = app.upload(t, "empty.txt", "text/plain", b"").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (_, list) = app.call("GET", "/v1/documents", Some(t), None).await;
    assert_eq!(list["items"], json!([]));

    // Looks like a PDF but is corrupt: accepted, then failed with the reason; no chunks.
    let (status, doc) = app
        .upload(
            t,
            "broken.pdf",
            "application/pdf",
            b"%PDF-1.4\n% nothing here\n%%EOF",
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    let (_, blank) = app
        .upload(t, "blank.md", "text/markdown", b"   \n\n  ")
        .await;
    app.ingest_all().await;
    for d in [&doc, &blank] {
        let (_, d) = app
            .call(
                "GET",
                &format!("/v1/documents/{}", d["id"].as_str().unwrap()),
                Some(t),
                None,
            )
            .await;
        assert_eq!(d["status"], "failed", "{d}");
        assert!(d["error"].as_str().unwrap().len() > 10, "{d}");
        assert_eq!(d["live_version"], Value::Null);
    }
    let brain = app.state.knowledge.get().unwrap();
    let tenant = coach_brain::Tenant::scoped(owner["tenant_id"].as_str().unwrap().parse().unwrap());
    assert_eq!(brain.vectors.count(tenant).await.unwrap(), 0);

    // Without credentials: 401.
    let (status, _) = app
        .call("POST", "/v1/search", None, Some(json!({ "query": "x" })))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Inbound messages get one cited answer each, queued for delivery; redeliveries get none; a
/// conversation a human took over gets none; a question outside the knowledge is flagged for a
/// human.
async fn the_responder_answers_each_message_once(b: &Backend) {
    use coach_gateway::knowledge::responder::poll_once;
    use coach_gateway::tenancy::SystemScope;

    let data = tempfile::tempdir().unwrap();
    let app = app_with_brain(b, data.path()).await;
    let owner = app.register("resp@example.com").await;
    let t = token(&owner);
    app.upload(t, "sleep.md", "text/markdown", GUIDE).await;
    app.ingest_all().await;
    let (_, channel) = app
        .call(
            "POST",
            "/v1/channels",
            Some(t),
            Some(whatsapp_channel("bot")),
        )
        .await;
    let channel_id = channel["id"].as_str().unwrap().parse().unwrap();
    let scope =
        SystemScope::new("test").for_tenant(owner["tenant_id"].as_str().unwrap().parse().unwrap());
    let question = crate::common::text("q1", "ana", "When should I stop drinking coffee?");
    b.store
        .ingest(&scope, channel_id, vec![question.clone()])
        .await
        .unwrap();
    // The provider retries the same update: stored once, answered once.
    b.store
        .ingest(&scope, channel_id, vec![question])
        .await
        .unwrap();
    assert_eq!(poll_once(&app.state).await.unwrap(), 1);
    assert_eq!(
        poll_once(&app.state).await.unwrap(),
        0,
        "one job per message"
    );
    let (_, convs) = app.call("GET", "/v1/conversations", Some(t), None).await;
    let conv = convs["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, msgs) = app
        .call(
            "GET",
            &format!("/v1/conversations/{conv}/messages"),
            Some(t),
            None,
        )
        .await;
    let items = msgs["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{msgs}");
    assert_eq!(items[1]["direction"], "outbound");
    let answer = items[1]["content"]["text"].as_str().unwrap();
    // The sources, then (the coach's first reply to this contact) the notice that it is an AI.
    let (reply, notice) = answer
        .split_once("\n\nSources: sleep.md\n\n")
        .unwrap_or_else(|| panic!("no sources line: {answer}"));
    assert!(reply.len() > 5, "{answer}");
    assert!(notice.starts_with("(This coach is an AI."), "{answer}");

    // A member takes over: the coach stays silent.
    let (status, taken) = app
        .call(
            "POST",
            &format!("/v1/conversations/{conv}/takeover"),
            Some(t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken["status"], "human");
    b.store
        .ingest(
            &scope,
            channel_id,
            vec![crate::common::text("q2", "ana", "And tea?")],
        )
        .await
        .unwrap();
    assert_eq!(poll_once(&app.state).await.unwrap(), 1);
    let (_, msgs) = app
        .call(
            "GET",
            &format!("/v1/conversations/{conv}/messages"),
            Some(t),
            None,
        )
        .await;
    assert_eq!(
        msgs["items"].as_array().unwrap().len(),
        3,
        "no answer while a human is on it"
    );

    // Handed back, a question outside the knowledge: an honest "I don't know" and a flag.
    app.call(
        "POST",
        &format!("/v1/conversations/{conv}/handback"),
        Some(t),
        None,
    )
    .await;
    b.store
        .ingest(
            &scope,
            channel_id,
            vec![crate::common::text(
                "q3",
                "ana",
                "Who won the 1954 football world cup final?",
            )],
        )
        .await
        .unwrap();
    assert_eq!(poll_once(&app.state).await.unwrap(), 1);
    let (_, waiting) = app
        .call("GET", "/v1/conversations?status=waiting", Some(t), None)
        .await;
    assert_eq!(waiting["items"][0]["id"], conv.as_str(), "{waiting}");
    let (_, msgs) = app
        .call(
            "GET",
            &format!("/v1/conversations/{conv}/messages"),
            Some(t),
            None,
        )
        .await;
    let last = &msgs["items"].as_array().unwrap()[4];
    assert!(
        last["content"]["text"]
            .as_str()
            .unwrap()
            .contains("don't know"),
        "{last}"
    );

    // A manual reply is stored, queued and takes the conversation over.
    let (status, sent) = app
        .call(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(t),
            Some(json!({ "text": "Brazil? No: West Germany." })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["status"], "pending");
    let (_, c) = app
        .call("GET", &format!("/v1/conversations/{conv}"), Some(t), None)
        .await;
    assert_eq!(c["status"], "human");
    assert_eq!(c["assignee"], owner["user_id"]);
    let (status, _) = app
        .call(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(t),
            Some(json!({ "text": "  " })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// The same text uploaded by two tenants: each one's search and answers see only its own copy.
async fn each_tenant_retrieves_only_its_own_knowledge(b: &Backend) {
    let data = tempfile::tempdir().unwrap();
    let app = app_with_brain(b, data.path()).await;
    let a = app.register("left@example.com").await;
    let bee = app.register("right@example.com").await;
    let (_, doc_a) = app
        .upload(token(&a), "sleep.md", "text/markdown", GUIDE)
        .await;
    let (_, doc_b) = app
        .upload(token(&bee), "sleep.md", "text/markdown", GUIDE)
        .await;
    app.ingest_all().await;
    for (who, own, other) in [(&a, &doc_a, &doc_b), (&bee, &doc_b, &doc_a)] {
        for mode in ["dense", "keyword", "hybrid"] {
            let (_, found) = app
                .call(
                    "POST",
                    "/v1/search",
                    Some(token(who)),
                    Some(json!({ "query": "coffee after 2 pm", "limit": 50, "mode": mode })),
                )
                .await;
            let passages = found["passages"].as_array().unwrap();
            assert!(!passages.is_empty(), "{mode}: {found}");
            assert!(
                passages.iter().all(|p| p["document_id"] == own["id"]),
                "{mode}: another tenant's chunk: {found}"
            );
            assert!(!found.to_string().contains(other["id"].as_str().unwrap()));
        }
        let sse = chat(&app, token(who), "When should I stop drinking coffee?").await;
        let citations = &events(&sse, "citations")[0];
        assert!(
            citations
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["document_id"] == own["id"]),
            "{sse}"
        );
    }
    // Erasing one tenant removes its chunks from the vector store, and only its own.
    let brain = app.state.knowledge.get().unwrap();
    let scoped = |pair: &Value| {
        coach_brain::Tenant::scoped(pair["tenant_id"].as_str().unwrap().parse().unwrap())
    };
    assert!(brain.vectors.count(scoped(&a)).await.unwrap() > 0);
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        "/v1/tenant",
        Some(token(&a)),
        None,
    )
    .await;
    assert_eq!(
        brain.vectors.count(scoped(&a)).await.unwrap(),
        0,
        "chunks left behind"
    );
    assert!(
        brain.vectors.count(scoped(&bee)).await.unwrap() > 0,
        "another tenant's chunks went"
    );
}

/// After the embedding model changed, `gateway reembed` empties the vector store, records the
/// new model and indexes every document again: the gateway then loads and finds them.
async fn reembed_rebuilds_after_a_model_change(b: &Backend) {
    let data = tempfile::tempdir().unwrap();
    let app = app_with_brain(b, data.path()).await;
    let owner = app.register("re@example.com").await;
    let (status, doc) = app
        .upload(token(&owner), "sleep.md", "text/markdown", GUIDE)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    app.ingest_all().await;
    let config = app.state.config.as_ref().clone();
    drop(app);
    // The stored vectors are of another model (as after changing brain.embedding_model).
    {
        let vectors =
            coach_brain::vectors::edge::EdgeStore::open(&data.path().join("vectors")).unwrap();
        coach_brain::vectors::VectorStore::reset(&vectors, "an-older-embedder", 384)
            .await
            .unwrap();
    }
    let refused = coach_gateway::knowledge::Knowledge::load(&config).await;
    let why = refused.get().err().unwrap().to_string();
    assert!(why.contains("an-older-embedder"), "{why}");

    let (ready, failed, pending) =
        coach_gateway::knowledge::cli::reembed_with(config, b.store.clone(), false)
            .await
            .unwrap();
    assert_eq!((ready, failed, pending), (1, 0, 0));
    let app = app_with_brain(b, data.path()).await;
    let (_, found) = app
        .call(
            "POST",
            "/v1/search",
            Some(token(&owner)),
            Some(json!({ "query": "when should I stop coffee?" })),
        )
        .await;
    assert_eq!(found["confident"], true, "{found}");
    assert_eq!(found["passages"][0]["version"], 2, "{found}");
}

/// Uploads have their own body limit (`brain.max_upload_bytes`, 20 MiB by default), not the
/// API's 2 MiB; a larger body gets a 413 problem document naming the setting, and nothing is
/// stored. Other routes keep `http.body_limit_bytes`, also answered as a problem document.
async fn uploads_have_their_own_body_limit(b: &Backend) {
    let app = app(b);
    let owner = app.register("big@example.com").await;
    let t = token(&owner);
    let mut text = b"# Notes\n\n".to_vec();
    text.resize(15 * 1024 * 1024, b'a');
    let (status, doc) = app.upload(t, "notes.md", "text/markdown", &text).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{doc}");
    assert_eq!(doc["size_bytes"], 15 * 1024 * 1024);

    text.resize(25 * 1024 * 1024, b'a');
    let (status, problem) = app.upload(t, "big.md", "text/markdown", &text).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["status"], 413, "not a problem document: {problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("brain.max_upload_bytes"),
        "{problem}"
    );
    let (_, list) = app.call("GET", "/v1/documents", Some(t), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

    let huge = json!({ "name": "x".repeat(3 * 1024 * 1024) });
    let (status, problem) = app.call("PATCH", "/v1/tenant", Some(t), Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["status"], 413, "not a problem document: {problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("http.body_limit_bytes"),
        "{problem}"
    );
}

against_every_backend!(
    uploads_have_their_own_body_limit,
    reembed_rebuilds_after_a_model_change,
    each_tenant_retrieves_only_its_own_knowledge,
    upload_search_answer_reindex_delete,
    unusable_files_get_clear_errors_and_leave_nothing,
    the_responder_answers_each_message_once
);
