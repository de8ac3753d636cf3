//! Files a creator sends from the library (`/v1/files`), on SQLite and PostgreSQL, against
//! loopback fakes of the providers: WhatsApp gets the PDF through Graph's `/media` upload (a
//! multipart form, the same bytes) and then a document message naming the media id, once per
//! channel (a second send reuses the id); Telegram gets `sendDocument` with the file in the
//! form; a program step sends its file with its text as the caption; files are refused by type,
//! another tenant's file cannot be sent, and a file a program sends cannot be removed.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

against_every_backend!(
    a_library_pdf_reaches_whatsapp_by_upload_and_telegram_in_the_form,
    a_file_in_a_program_cannot_be_removed_and_unknown_files_are_refused,
    a_program_step_sends_its_file_with_its_text,
);

/// A small real PDF (one empty page).
pub(crate) const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/MediaBox[0 0 200 200]/Parent 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

async fn conversation(w: &World, t: &str) -> String {
    w.app
        .call("GET", "/v1/conversations", Some(t), None)
        .await
        .1["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A Telegram channel of the tenant, and `text` from the private chat `chat` on it at `date`.
async fn telegram_hello(w: &World, t: &str, chat: i64, text: &str, date: i64) {
    let tg = create(w, t, "telegram", json!({ "bot_token": BOT_TOKEN })).await;
    let secret = w.fake.requests_to("/setWebhook").last().unwrap().json()["secret_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = json!({ "update_id": chat, "message": { "message_id": chat, "date": date,
        "from": { "id": chat, "is_bot": false, "first_name": "Bo" },
        "chat": { "id": chat, "type": "private" }, "text": text } });
    let hook = format!("/webhooks/telegram/{}", tg["id"].as_str().unwrap());
    let headers = [("x-telegram-bot-api-secret-token", secret)];
    let body = serde_json::to_vec(&update).unwrap();
    assert_eq!(w.post(&hook, &headers, body).await.0, 200);
}

async fn send_file(
    w: &World,
    t: &str,
    conv: &str,
    file: &str,
    caption: &str,
) -> (StatusCode, Value) {
    w.app
        .call(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(t),
            Some(json!({ "text": caption, "file_id": file })),
        )
        .await
}

async fn a_library_pdf_reaches_whatsapp_by_upload_and_telegram_in_the_form(b: &Backend) {
    let w = world(b, false).await;
    let owner = w.app.register("files@example.com").await;
    let t = token(&owner).to_owned();
    let (status, file) = w
        .app
        .upload_to(
            "/v1/files",
            &t,
            "Week 1 worksheet.pdf",
            "application/pdf",
            PDF,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["mime"], "application/pdf");
    assert_eq!(file["kind"], "document");
    assert_eq!(file["bytes"], PDF.len());
    let file_id = file["id"].as_str().unwrap().to_owned();

    // WhatsApp: upload first, then the document by its media id.
    let channel = create(&w, &t, "whatsapp", whatsapp_config()).await;
    let hook = format!("/webhooks/whatsapp/{}", channel["id"].as_str().unwrap());
    let hello = wa_text("wamid.F1", "hello");
    let signed = [("x-hub-signature-256", meta_signature(&hello))];
    assert_eq!(w.post(&hook, &signed, hello).await.0, 200);
    let conv = conversation(&w, &t).await;
    let (status, sent) = send_file(&w, &t, &conv, &file_id, "Your worksheet for week 1").await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["content"]["kind"], "file");
    assert!(
        sent["content"].get("data").is_none(),
        "no bytes in the row: {sent}"
    );
    w.deliver().await;
    let uploads = w.fake.requests_to(&format!("/v21.0/{PHONE_ID}/media"));
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        uploads[0].header("authorization"),
        Some("Bearer EAAG-live-token")
    );
    let parts = uploads[0].parts().await;
    let part = |n: &str| parts.iter().find(|p| p.name == n).unwrap();
    assert_eq!(part("messaging_product").bytes, b"whatsapp");
    assert_eq!(part("type").bytes, b"application/pdf");
    assert_eq!(part("file").bytes, PDF, "the same bytes");
    assert_eq!(
        part("file").filename.as_deref(),
        Some("Week 1 worksheet.pdf")
    );
    let messages = w.fake.requests_to(&format!("/v21.0/{PHONE_ID}/messages"));
    let documents: Vec<Value> = messages
        .iter()
        .map(|r| r.json())
        .filter(|m| m["type"] == "document")
        .collect();
    assert_eq!(documents.len(), 1, "{messages:?}");
    let document = &documents[0]["document"];
    assert!(
        document["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("449")),
        "{document}"
    );
    assert!(
        document.get("link").is_none(),
        "never a public link: {document}"
    );
    assert_eq!(document["filename"], "Week 1 worksheet.pdf");
    assert_eq!(document["caption"], "Your worksheet for week 1");
    assert_eq!(documents[0]["to"], "4915112345678");
    let stored = w.messages(&t).await;
    assert_eq!(stored.last().unwrap()["status"], "sent", "{stored:?}");

    // A second send on the channel names the same media id without uploading again.
    send_file(&w, &t, &conv, &file_id, "").await;
    w.deliver().await;
    assert_eq!(
        w.fake
            .requests_to(&format!("/v21.0/{PHONE_ID}/media"))
            .len(),
        1,
        "uploaded once"
    );
    let again: Vec<Value> = w
        .fake
        .requests_to(&format!("/v21.0/{PHONE_ID}/messages"))
        .iter()
        .map(|r| r.json())
        .filter(|m| m["type"] == "document")
        .collect();
    assert_eq!(again.len(), 2);
    assert_eq!(again[1]["document"]["id"], document["id"]);
    assert!(again[1]["document"].get("caption").is_none(), "{again:?}");

    // Graph no longer knows the kept id: the file is uploaded again and sent by the new one.
    w.fake.fail_next(
        &format!("/{PHONE_ID}/messages"),
        400,
        json!({ "error": { "code": 131053, "message": "Media upload error" } }),
        &[],
    );
    send_file(&w, &t, &conv, &file_id, "Again").await;
    w.deliver().await;
    let uploads = w.fake.requests_to(&format!("/v21.0/{PHONE_ID}/media"));
    assert_eq!(uploads.len(), 2, "uploaded again");
    let third: Vec<Value> = w
        .fake
        .requests_to(&format!("/v21.0/{PHONE_ID}/messages"))
        .iter()
        .map(|r| r.json())
        .filter(|m| m["type"] == "document")
        .collect();
    assert_eq!(third.len(), 4, "the refused send and its resend");
    assert_ne!(third[3]["document"]["id"], document["id"], "a new id");
    assert_eq!(w.messages(&t).await.last().unwrap()["status"], "sent");

    // Many sends of one file at once (a program step's audience): one upload, then each by it.
    let (_, week2) = w
        .app
        .upload_to("/v1/files", &t, "Week 2.pdf", "application/pdf", PDF)
        .await;
    for n in 0..3 {
        let hello = wa_webhook(json!({
            "contacts": [{ "profile": { "name": "Many" }, "wa_id": format!("49151000000{n}") }],
            "messages": [{ "from": format!("49151000000{n}"), "id": format!("wamid.M{n}"),
                "timestamp": "1700000000", "type": "text", "text": { "body": "hi" } }],
        }));
        let signed = [("x-hub-signature-256", meta_signature(&hello))];
        assert_eq!(w.post(&hook, &signed, hello).await.0, 200);
    }
    let (_, convs) = w.app.call("GET", "/v1/conversations", Some(&t), None).await;
    let many: Vec<String> = convs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["external_id"]
                .as_str()
                .unwrap()
                .starts_with("49151000000")
        })
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(many.len(), 3);
    for conv in &many {
        send_file(&w, &t, conv, week2["id"].as_str().unwrap(), "").await;
    }
    // A slow upload: the other rows of the batch wait for it rather than upload too.
    w.fake
        .delay_next("/media", std::time::Duration::from_millis(400));
    w.deliver().await;
    let mut week2_uploads = 0;
    for upload in w.fake.requests_to(&format!("/v21.0/{PHONE_ID}/media")) {
        let parts = upload.parts().await;
        if parts
            .iter()
            .any(|p| p.filename.as_deref() == Some("Week 2.pdf"))
        {
            week2_uploads += 1;
        }
    }
    assert_eq!(week2_uploads, 1, "one upload for the three sends");
    let by_week2: Vec<Value> = w
        .fake
        .requests_to(&format!("/v21.0/{PHONE_ID}/messages"))
        .iter()
        .map(|r| r.json())
        .filter(|m| m["document"]["filename"] == "Week 2.pdf")
        .collect();
    assert_eq!(by_week2.len(), 3);
    assert!(
        by_week2
            .iter()
            .all(|m| m["document"]["id"] == by_week2[0]["document"]["id"])
    );

    // The console shows the sent file: the media route serves the library's bytes.
    let last = w.messages(&t).await.last().unwrap().clone();
    let resp = w
        .http
        .get(format!(
            "{}/v1/messages/{}/media",
            w.base,
            last["id"].as_str().unwrap()
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-media-kind"], "file");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(&resp.bytes().await.unwrap()[..], PDF);

    // Telegram: the file goes in the sendDocument form.
    telegram_hello(&w, &t, 77, "hi", 1_700_000_000).await;
    let (_, convs) = w.app.call("GET", "/v1/conversations", Some(&t), None).await;
    let tg_conv = convs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["external_id"] == "77")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    send_file(&w, &t, &tg_conv, &file_id, "Week 1 <b>worksheet</b>").await;
    w.deliver().await;
    let calls = w.fake.requests_to("/sendDocument");
    assert_eq!(calls.len(), 1);
    let parts = calls[0].parts().await;
    let part = |n: &str| parts.iter().find(|p| p.name == n).unwrap();
    assert_eq!(part("chat_id").bytes, b"77");
    assert_eq!(part("document").bytes, PDF);
    assert_eq!(
        part("document").filename.as_deref(),
        Some("Week 1 worksheet.pdf")
    );
    assert_eq!(
        part("caption").bytes,
        b"Week 1 &lt;b&gt;worksheet&lt;/b&gt;"
    );
    assert!(calls[0].path.contains(BOT_TOKEN));
}

async fn a_file_in_a_program_cannot_be_removed_and_unknown_files_are_refused(b: &Backend) {
    let w = world(b, false).await;
    let owner = w.app.register("files-rules@example.com").await;
    let t = token(&owner).to_owned();
    let other = w.app.register("files-other@example.com").await;
    let o = token(&other).to_owned();

    // By their bytes: SVG, HTML and plain text are refused whatever their name.
    for (name, bytes) in [
        (
            "a.pdf",
            &b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"[..],
        ),
        ("b.pdf", &b"<html><script>alert(1)</script></html>"[..]),
        ("c.pdf", &b"just words"[..]),
    ] {
        let (status, body) = w
            .app
            .upload_to("/v1/files", &t, name, "application/pdf", bytes)
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}: {body}");
    }
    let (_, list) = w.app.call("GET", "/v1/files", Some(&t), None).await;
    assert_eq!(list, json!([]));
    let (_, file) = w
        .app
        .upload_to(
            "/v1/files",
            &t,
            "../../etc/plan.pdf",
            "application/pdf",
            PDF,
        )
        .await;
    assert_eq!(file["name"], "plan.pdf", "no path in a name");
    let id = file["id"].as_str().unwrap().to_owned();

    // Another tenant neither sees, downloads, sends nor removes it.
    let (_, theirs) = w.app.call("GET", "/v1/files", Some(&o), None).await;
    assert_eq!(theirs, json!([]));
    let (status, _) = w
        .app
        .call("GET", &format!("/v1/files/{id}"), Some(&o), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .app
        .call("DELETE", &format!("/v1/files/{id}"), Some(&o), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let channel = create(&w, &o, "whatsapp", whatsapp_config()).await;
    let hook = format!("/webhooks/whatsapp/{}", channel["id"].as_str().unwrap());
    let hello = wa_text("wamid.O1", "hello");
    let signed = [("x-hub-signature-256", meta_signature(&hello))];
    w.post(&hook, &signed, hello).await;
    let conv = conversation(&w, &o).await;
    let (status, body) = send_file(&w, &o, &conv, &id, "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("file_id"),
        "{body}"
    );
    let (status, body) = w
        .app
        .call(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(&o),
            Some(json!({ "text": "" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // A program step sends it: the program names only the tenant's files, and the file stays
    // while the program sends it.
    let program = |file: &str| {
        json!({ "name": "Week one", "goal": "Start", "steps": [
            { "id": "s1", "message": "Here is your plan", "file": file,
              "template": { "name": "plan_ready", "language": "en_US" } }
        ] })
    };
    let (status, body) = w
        .app
        .call("POST", "/v1/programs", Some(&o), Some(program(&id)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("steps[0].file"),
        "{body}"
    );
    let (status, body) = w
        .app
        .call("POST", "/v1/programs", Some(&t), Some(program(&id)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = w
        .app
        .call("DELETE", &format!("/v1/files/{id}"), Some(&t), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("Week one"),
        "{body}"
    );
    let mut with_buttons = program(&id);
    with_buttons["steps"][0]["buttons"] = json!([{ "id": "ok", "title": "OK" }]);
    let (status, _) = w
        .app
        .call("POST", "/v1/programs", Some(&t), Some(with_buttons))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Removed once no program sends it: gone from the list and the disk.
    let pid = body_id(&w, &t).await;
    let mut without = program(&id);
    without["steps"][0].as_object_mut().unwrap().remove("file");
    let (status, body) = w
        .app
        .call(
            "PUT",
            &format!("/v1/programs/{pid}"),
            Some(&t),
            Some(without),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = w
        .app
        .call("DELETE", &format!("/v1/files/{id}"), Some(&t), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .app
        .call("GET", &format!("/v1/files/{id}"), Some(&t), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let tenant = owner["tenant_id"].as_str().unwrap();
    let path = w
        .app
        .state
        .config
        .data_dir
        .join("media")
        .join(tenant)
        .join("library")
        .join(&id);
    assert!(!path.exists(), "the bytes are gone");
}

async fn body_id(w: &World, t: &str) -> String {
    let (_, programs) = w.app.call("GET", "/v1/programs", Some(t), None).await;
    programs[0]["id"].as_str().unwrap().to_owned()
}

/// A program step with a file: a Telegram contact who writes the program's keyword gets the
/// step's text as the caption of the file (at noon on a manual clock, outside quiet hours).
async fn a_program_step_sends_its_file_with_its_text(b: &Backend) {
    let noon = (chrono::Utc::now() + chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    let w = world_on(b, false, coach_gateway::clock::Clock::manual(noon)).await;
    let owner = w.app.register("files-program@example.com").await;
    let t = token(&owner).to_owned();
    let (_, file) = w
        .app
        .upload_to("/v1/files", &t, "plan.pdf", "application/pdf", PDF)
        .await;
    let program = json!({ "name": "Plan", "goal": "Start", "keywords": ["PLAN1"], "steps": [
        { "id": "s1", "message": "Here is your plan", "file": file["id"],
          "template": { "name": "plan_ready", "language": "en_US" } }
    ] });
    let (status, body) = w
        .app
        .call("POST", "/v1/programs", Some(&t), Some(program))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    telegram_hello(&w, &t, 78, "PLAN1", noon.timestamp()).await;
    let (mut seen, mut log) = (0, Vec::new());
    for _ in 0..3 {
        crate::programs::turn(&w, noon, &mut seen, &mut log).await;
    }
    let calls = w.fake.requests_to("/sendDocument");
    assert_eq!(calls.len(), 1, "{:?}", w.fake.requests());
    let parts = calls[0].parts().await;
    let part = |n: &str| parts.iter().find(|p| p.name == n).unwrap();
    assert_eq!(part("caption").bytes, b"Here is your plan");
    assert_eq!(part("document").bytes, PDF);
    assert_eq!(part("chat_id").bytes, b"78");
}
