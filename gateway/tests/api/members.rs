//! Members and invitations on SQLite and PostgreSQL: invite, accept, change roles, remove,
//! list and revoke pending invitations.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;
use axum::http::StatusCode;
use coach_gateway::tenancy::SystemScope;
use serde_json::{Value, json};

against_every_backend!(
    invitations_are_listed_revoked_and_never_change_a_role,
    members_are_invited_promoted_and_removed,
);

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
    app.expect(StatusCode::NO_CONTENT, "DELETE", &revoke, t, None)
        .await;
    app.expect(StatusCode::NOT_FOUND, "DELETE", &revoke, t, None)
        .await;
    let accept = |inv: &Value| json!({ "invite_token": inv["invite_token"], "password": "cobalt-Meadow-tiger-27" });
    app.expect(
        StatusCode::UNAUTHORIZED,
        "POST",
        "/v1/auth/accept-invite",
        None,
        Some(accept(&second)),
    )
    .await;

    // Another tenant cannot see or revoke this tenant's invitations.
    let other = app.register("zed@example.com").await;
    let (_, theirs) = app
        .call("GET", "/v1/members/invites", Some(token(&other)), None)
        .await;
    assert_eq!(theirs, json!([]));
    let joe_invite = format!("/v1/members/invites/{}", first["id"].as_str().unwrap());
    app.expect(
        StatusCode::NOT_FOUND,
        "DELETE",
        &joe_invite,
        Some(token(&other)),
        None,
    )
    .await;

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
    app.expect(
        StatusCode::NO_CONTENT,
        "PATCH",
        &promote,
        t,
        Some(json!({ "role": "admin" })),
    )
    .await;
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
    app.expect(StatusCode::NO_CONTENT, "DELETE", &promote, t, None)
        .await;
    let (_, list) = app.call("GET", "/v1/members/invites", t, None).await;
    assert_eq!(list, json!([]), "{list}");
    app.expect(
        StatusCode::UNAUTHORIZED,
        "POST",
        "/v1/auth/accept-invite",
        None,
        Some(accept(&sent)),
    )
    .await;

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
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "POST",
        "/v1/auth/accept-invite",
        None,
        Some(accept("weak")),
    )
    .await;
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
    app.expect_because(
        StatusCode::UNAUTHORIZED,
        "POST",
        "/v1/auth/accept-invite",
        None,
        Some(accept("cobalt-Meadow-tiger-27")),
        "single use",
    )
    .await;

    let (_, members) = app
        .call("GET", "/v1/members", Some(token(&eve)), None)
        .await;
    assert_eq!(members.as_array().unwrap().len(), 2);
    // An editor cannot invite; an admin cannot make owners.
    let invite_admin = json!({ "email": "x@example.com", "role": "admin" });
    app.expect(
        StatusCode::FORBIDDEN,
        "POST",
        "/v1/members/invites",
        Some(token(&eve)),
        Some(invite_admin),
    )
    .await;
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
    app.expect_because(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/me",
        Some(token(&eve)),
        None,
        "a role change ends the member's sessions",
    )
    .await;
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
    app.expect(
        StatusCode::FORBIDDEN,
        "PATCH",
        &format!("/v1/members/{owner_id}"),
        Some(token(&eve)),
        Some(demote.clone()),
    )
    .await;
    app.expect_because(
        StatusCode::CONFLICT,
        "PATCH",
        &format!("/v1/members/{owner_id}"),
        t,
        Some(demote),
        "the last owner stays",
    )
    .await;
    app.expect(
        StatusCode::CONFLICT,
        "DELETE",
        &format!("/v1/members/{owner_id}"),
        t,
        None,
    )
    .await;
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
    app.expect_because(
        StatusCode::UNAUTHORIZED,
        "POST",
        "/v1/auth/accept-invite",
        None,
        Some(wrong),
        "no takeover of an existing account",
    )
    .await;
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
    // Without a tenant, a login opens the one used last.
    let (_, again) = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({ "email": "ana@example.com", "password": "violet-quarry-Tundra-88" })),
        )
        .await;
    assert_eq!(again["tenant_id"], other["tenant_id"], "{again}");
    // Removal ends the member's sessions.
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/members/{eve_id}"),
        t,
        None,
    )
    .await;
    app.expect(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/me",
        Some(token(&eve)),
        None,
    )
    .await;
}
