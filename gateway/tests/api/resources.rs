//! Admin API resources on SQLite and PostgreSQL: persona and retention, members and
//! invitations, contacts export and erasure, tenant erasure, API keys, operators.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;
use axum::http::StatusCode;
use coach_gateway::tenancy::SystemScope;
use serde_json::{Value, json};

against_every_backend!(
    invitations_are_listed_revoked_and_never_change_a_role,
    the_persona_is_kept_and_validated,
    members_are_invited_promoted_and_removed,
    a_contact_is_exported_then_erased_with_everything_derived,
    erasing_a_tenant_removes_its_data_and_sessions,
    api_keys_act_for_their_tenant_within_their_role,
    operators_list_suspend_and_resume_tenants,
);

async fn the_persona_is_kept_and_validated(b: &Backend) {
    let app = app(b);
    let pair = app.register("ana@example.com").await;
    let t = Some(token(&pair));
    let (status, tenant) = app.call("GET", "/v1/tenant", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tenant["persona"]["coach_name"], "");
    let persona = json!({ "coach_name": "Maya", "tone": "warm", "language": "es", "greeting": "¡Hola!",
        "coaching_style": "questions first", "boundaries": "no medical advice" });
    let (status, updated) = app
        .call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "name": "Ana & Co", "persona": persona })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Ana & Co");
    let (_, again) = app.call("GET", "/v1/tenant", t, None).await;
    assert_eq!(again["persona"], persona);
    let bad = json!({ "persona": { "language": "english please" } });
    assert_eq!(
        app.call("PATCH", "/v1/tenant", t, Some(bad)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let unknown = json!({ "persona": { "mood": "x" } });
    assert_eq!(
        app.call("PATCH", "/v1/tenant", t, Some(unknown)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.call("GET", "/v1/tenant", t, None).await.1["persona"],
        persona,
        "a refused change changes nothing"
    );
    let (_, kept) = app
        .call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "retention_days": 30 })),
        )
        .await;
    assert_eq!(
        (kept["retention_days"].as_u64(), &kept["persona"]),
        (Some(30), &persona),
        "fields not sent stay"
    );
    assert_eq!(
        app.call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "retention_days": 5000 }))
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (_, forever) = app
        .call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "retention_days": 0 })),
        )
        .await;
    assert!(forever["retention_days"].is_null());
}

/// Pending invitations are listed and can be revoked (the token then fails); removing a member
/// revokes the invitations they sent; accepting an invitation as an existing member changes no
/// role, so an invitation cannot promote or demote anyone.
async fn invitations_are_listed_revoked_and_never_change_a_role(b: &Backend) {
    let app = app(b);
    let owner = app.register("ida@example.com").await;
    let t = Some(token(&owner));
    let invite = |email: &str, role: &str| json!({ "email": email, "role": role });
    let (_, first) = app
        .call(
            "POST",
            "/v1/members/invites",
            t,
            Some(invite("joe@example.com", "editor")),
        )
        .await;
    let (_, second) = app
        .call(
            "POST",
            "/v1/members/invites",
            t,
            Some(invite("kim@example.com", "viewer")),
        )
        .await;
    let (status, list) = app.call("GET", "/v1/members/invites", t, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["kim@example.com", "joe@example.com"]);
    assert!(
        list[0].get("invite_token").is_none() && list[0].get("token_hash").is_none(),
        "{list}"
    );

    let revoke = format!("/v1/members/invites/{}", second["id"].as_str().unwrap());
    assert_eq!(
        app.call("DELETE", &revoke, t, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("DELETE", &revoke, t, None).await.0,
        StatusCode::NOT_FOUND
    );
    let accept = |inv: &Value| json!({ "invite_token": inv["invite_token"], "password": "cobalt-Meadow-tiger-27" });
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/accept-invite",
            None,
            Some(accept(&second))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );

    // Another tenant cannot see or revoke this tenant's invitations.
    let other = app.register("zed@example.com").await;
    let (_, theirs) = app
        .call("GET", "/v1/members/invites", Some(token(&other)), None)
        .await;
    assert_eq!(theirs, json!([]));
    let joe_invite = format!("/v1/members/invites/{}", first["id"].as_str().unwrap());
    assert_eq!(
        app.call("DELETE", &joe_invite, Some(token(&other)), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // Joe joins as an editor; a later invitation as admin does not promote him.
    let (status, joe) = app
        .call("POST", "/v1/auth/accept-invite", None, Some(accept(&first)))
        .await;
    assert_eq!(status, StatusCode::OK, "{joe}");
    let (_, again) = app
        .call(
            "POST",
            "/v1/members/invites",
            t,
            Some(invite("joe@example.com", "admin")),
        )
        .await;
    let (status, joined) = app
        .call("POST", "/v1/auth/accept-invite", None, Some(accept(&again)))
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(
        joined["role"], "editor",
        "the session carries the stored role: {joined}"
    );
    let (_, members) = app.call("GET", "/v1/members", t, None).await;
    let role = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "joe@example.com")
        .unwrap()["role"]
        .clone();
    assert_eq!(role, "editor", "{members}");

    // Joe (promoted by the owner) invites someone, then is removed: his invitation goes too.
    let joe_id = joe["user_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    let promote = format!("/v1/members/{joe_id}");
    assert_eq!(
        app.call("PATCH", &promote, t, Some(json!({ "role": "admin" })))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (_, joe_again) = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": "joe@example.com", "password": "cobalt-Meadow-tiger-27" })),
        )
        .await;
    let (status, sent) = app
        .call(
            "POST",
            "/v1/members/invites",
            Some(token(&joe_again)),
            Some(invite("lea@example.com", "viewer")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(
        app.call("DELETE", &promote, t, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, list) = app.call("GET", "/v1/members/invites", t, None).await;
    assert_eq!(list, json!([]), "{list}");
    assert_eq!(
        app.call("POST", "/v1/auth/accept-invite", None, Some(accept(&sent)))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // A suspended tenant's invitation cannot be accepted.
    let (_, pending) = app
        .call(
            "POST",
            "/v1/members/invites",
            t,
            Some(invite("max@example.com", "viewer")),
        )
        .await;
    let tenant: coach_connector_api::TenantId =
        owner["tenant_id"].as_str().unwrap().parse().unwrap();
    b.store
        .set_tenant_active(&SystemScope::new("test"), tenant, false)
        .await
        .unwrap();
    let (status, refused) = app
        .call(
            "POST",
            "/v1/auth/accept-invite",
            None,
            Some(accept(&pending)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
}

async fn members_are_invited_promoted_and_removed(b: &Backend) {
    let app = app(b);
    let owner = app.register("ana@example.com").await;
    let t = Some(token(&owner));
    let (status, invite) = app
        .call(
            "POST",
            "/v1/members/invites",
            t,
            Some(json!({ "email": "eve@example.com", "role": "editor" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let accept =
        |password: &str| json!({ "invite_token": invite["invite_token"], "password": password });
    assert_eq!(
        app.call("POST", "/v1/auth/accept-invite", None, Some(accept("weak")))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, eve) = app
        .call(
            "POST",
            "/v1/auth/accept-invite",
            None,
            Some(accept("cobalt-Meadow-tiger-27")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{eve}");
    assert_eq!(eve["role"], "editor");
    assert_eq!(eve["tenant_id"], owner["tenant_id"]);
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/accept-invite",
            None,
            Some(accept("cobalt-Meadow-tiger-27"))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED,
        "single use"
    );

    let (_, members) = app
        .call("GET", "/v1/members", Some(token(&eve)), None)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 2);
    // An editor cannot invite; an admin cannot make owners.
    let invite_admin = json!({ "email": "x@example.com", "role": "admin" });
    assert_eq!(
        app.call(
            "POST",
            "/v1/members/invites",
            Some(token(&eve)),
            Some(invite_admin)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let eve_id = eve["user_id"].as_str().unwrap();
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/v1/members/{eve_id}"),
            t,
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&eve)), None).await.0,
        StatusCode::UNAUTHORIZED,
        "a role change ends the member's sessions"
    );
    let eve = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": "eve@example.com", "password": "cobalt-Meadow-tiger-27" })),
        )
        .await
        .1;
    assert_eq!(eve["role"], "admin");
    let owner_id = owner["user_id"].as_str().unwrap();
    let demote = json!({ "role": "viewer" });
    assert_eq!(
        app.call(
            "PATCH",
            &format!("/v1/members/{owner_id}"),
            Some(token(&eve)),
            Some(demote.clone())
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("PATCH", &format!("/v1/members/{owner_id}"), t, Some(demote))
            .await
            .0,
        StatusCode::CONFLICT,
        "the last owner stays"
    );
    assert_eq!(
        app.call("DELETE", &format!("/v1/members/{owner_id}"), t, None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    // An existing account joins another tenant with its own password, and logs in to either.
    let other = app.register("bob@example.com").await;
    let (_, inv) = app
        .call(
            "POST",
            "/v1/members/invites",
            Some(token(&other)),
            Some(json!({ "email": "ana@example.com", "role": "viewer" })),
        )
        .await;
    let wrong =
        json!({ "invite_token": inv["invite_token"], "password": "cobalt-Meadow-tiger-27" });
    assert_eq!(
        app.call("POST", "/v1/auth/accept-invite", None, Some(wrong))
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "no takeover of an existing account"
    );
    let right =
        json!({ "invite_token": inv["invite_token"], "password": "violet-quarry-Tundra-88" });
    let (status, joined) = app
        .call("POST", "/v1/auth/accept-invite", None, Some(right))
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["tenant_id"], other["tenant_id"]);
    let login = json!({ "email": "ana@example.com", "password": "violet-quarry-Tundra-88", "tenant_id": other["tenant_id"] });
    assert_eq!(
        app.call("POST", "/v1/auth/login", None, Some(login))
            .await
            .1["role"],
        "viewer"
    );
    // Removal ends the member's sessions.
    assert_eq!(
        app.call("DELETE", &format!("/v1/members/{eve_id}"), t, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&eve)), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_contact_is_exported_then_erased_with_everything_derived(b: &Backend) {
    let app = app(b);
    let pair = app.register("ana@example.com").await;
    let t = Some(token(&pair));
    let (_, channel) = app
        .call("POST", "/v1/channels", t, Some(whatsapp_channel("bot")))
        .await;
    let scope =
        SystemScope::new("test").for_tenant(pair["tenant_id"].as_str().unwrap().parse().unwrap());
    let channel_id = channel["id"].as_str().unwrap().parse().unwrap();
    let events = vec![
        crate::common::text("m1", "alice", "my private goal"),
        crate::common::text("m2", "alice", "second"),
        crate::common::text("m3", "bob", "bob's"),
    ];
    b.store.ingest(&scope, channel_id, events).await.unwrap();
    let (status, contacts) = app.call("GET", "/v1/contacts", t, None).await;
    assert_eq!(status, StatusCode::OK);
    let alice = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["identities"][0]["external_id"] == "alice")
        .unwrap()
        .clone();
    let alice_id = alice["id"].as_str().unwrap();
    let (status, archive) = app
        .call("GET", &format!("/v1/contacts/{alice_id}/export"), t, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(archive["contact"]["id"], alice["id"]);
    let messages = &archive["conversations"][0]["messages"];
    assert_eq!(messages.as_array().unwrap().len(), 2);
    assert_eq!(messages[0]["content"]["body"], "my private goal");
    assert!(
        !archive.to_string().contains("bob's"),
        "only this contact's data"
    );

    let sys = SystemScope::new("test");
    assert_eq!(b.store.stats(&sys).await.unwrap().jobs_depth, 3);
    assert_eq!(
        app.call("DELETE", &format!("/v1/contacts/{alice_id}"), t, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", &format!("/v1/contacts/{alice_id}/export"), t, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, convs) = app.call("GET", "/v1/conversations", t, None).await;
    assert_eq!(
        convs["items"].as_array().unwrap().len(),
        1,
        "bob's conversation remains"
    );
    assert_eq!(
        b.store.stats(&sys).await.unwrap().jobs_depth,
        1,
        "alice's jobs went with her"
    );
    let (_, log) = app.call("GET", "/v1/audit-log", t, None).await;
    assert_eq!(log[0]["action"], "contact.erase");
    assert!(
        !log.to_string().contains("private goal") && !log.to_string().contains("alice"),
        "no personal data in the audit log"
    );
    assert_eq!(
        app.call("DELETE", &format!("/v1/contacts/{alice_id}"), t, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

async fn erasing_a_tenant_removes_its_data_and_sessions(b: &Backend) {
    let app = app(b);
    let doomed = app.register("ana@example.com").await;
    let kept = app.register("bob@example.com").await;
    let t = Some(token(&doomed));
    app.call("POST", "/v1/channels", t, Some(whatsapp_channel("bot")))
        .await;
    app.call(
        "POST",
        "/v1/channels",
        Some(token(&kept)),
        Some(whatsapp_channel("bot")),
    )
    .await;
    assert_eq!(
        app.call("DELETE", "/v1/tenant", t, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", "/v1/channels", t, None).await.0,
        StatusCode::UNAUTHORIZED,
        "its sessions ended"
    );
    let (status, _) = app
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": doomed["refresh_token"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, channels) = app
        .call("GET", "/v1/channels", Some(token(&kept)), None)
        .await;
    assert_eq!(
        channels.as_array().unwrap().len(),
        1,
        "other tenants keep their data"
    );
}

async fn api_keys_act_for_their_tenant_within_their_role(b: &Backend) {
    let app = app(b);
    let owner = app.register("ana@example.com").await;
    let t = Some(token(&owner));
    let (status, created) = app
        .call(
            "POST",
            "/v1/api-keys",
            t,
            Some(json!({ "name": "crm sync", "role": "editor" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("cgk_") && key.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(
        app.call(
            "POST",
            "/v1/api-keys",
            t,
            Some(json!({ "name": "x", "role": "owner" }))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // The key reads within its tenant, is bounded by its role, and has no user.
    assert_eq!(
        app.call("GET", "/v1/channels", Some(&key), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.call("GET", "/v1/tenant", Some(&key), None).await.1["id"],
        owner["tenant_id"]
    );
    let create = whatsapp_channel("bot");
    assert_eq!(
        app.call("POST", "/v1/channels", Some(&key), Some(create))
            .await
            .0,
        StatusCode::FORBIDDEN,
        "editors cannot add channels"
    );
    assert_eq!(
        app.call("GET", "/v1/me", Some(&key), None).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, keys) = app.call("GET", "/v1/api-keys", t, None).await;
    assert!(!keys.to_string().contains(&key), "secrets are never listed");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.call("DELETE", &format!("/v1/api-keys/{id}"), t, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", "/v1/channels", Some(&key), None).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked at once"
    );
    assert_eq!(
        app.call("GET", "/v1/channels", Some("cgk_forged"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

async fn operators_list_suspend_and_resume_tenants(b: &Backend) {
    let app = app(b);
    let op = app.register("op@example.com").await;
    let sys = SystemScope::new("test");
    let op_id = coach_gateway::store::UserId(op["user_id"].as_str().unwrap().parse().unwrap());
    b.store.set_platform_admin(&sys, op_id, true).await.unwrap();
    let customer = app.register("ana@example.com").await;
    let (_, key) = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(token(&customer)),
            Some(json!({ "name": "k", "role": "viewer" })),
        )
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    // The operator flag is read when a token is issued.
    assert_eq!(
        app.call("GET", "/v1/platform/tenants", Some(token(&op)), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let login = |email: &str| json!({ "email": email, "password": "violet-quarry-Tundra-88" });
    let op = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login("op@example.com")),
        )
        .await
        .1;
    let (status, tenants) = app
        .call("GET", "/v1/platform/tenants", Some(token(&op)), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{tenants}");
    assert_eq!(tenants.as_array().unwrap().len(), 2);
    assert_eq!(
        app.call("GET", "/v1/platform/tenants", Some(token(&customer)), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("GET", "/v1/platform/tenants", Some(&key), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let tid = customer["tenant_id"].as_str().unwrap();
    let suspend = format!("/v1/platform/tenants/{tid}/suspend");
    assert_eq!(
        app.call("POST", &suspend, Some(token(&op)), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call("GET", "/v1/me", Some(token(&customer)), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login("ana@example.com"))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("GET", "/v1/channels", Some(&key), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, tenants) = app
        .call("GET", "/v1/platform/tenants", Some(token(&op)), None)
        .await;
    assert!(
        tenants
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == tid && t["status"] == "suspended")
    );

    let resume = format!("/v1/platform/tenants/{tid}/resume");
    assert_eq!(
        app.call("POST", &resume, Some(token(&op)), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login("ana@example.com"))
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        app.call("GET", "/v1/channels", Some(&key), None).await.0,
        StatusCode::OK
    );
    let missing = format!("/v1/platform/tenants/{}/suspend", uuid::Uuid::now_v7());
    assert_eq!(
        app.call("POST", &missing, Some(token(&op)), None).await.0,
        StatusCode::NOT_FOUND
    );
}
