//! The role × route matrix: for every route of the OpenAPI document and every caller (no
//! token, a user without roles, viewer, editor, approver, admin), no token → 401, a token
//! without the route's role → 403 `forbidden`, and otherwise the route's own answer.

use std::collections::BTreeSet;

use crate::admin_support::{TestApi, rollout};
use flightdeck_server::admin;
use flightdeck_store::Role;
use serde_json::{Value, json};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    /// Anyone, without a token.
    Public,
    /// Any user with a valid token.
    Token,
    /// A user holding this role (`admin` holds every role).
    Role(Role),
}

use Needs::{Public, Token};
const VIEWER: Needs = Needs::Role(Role::Viewer);
const EDITOR: Needs = Needs::Role(Role::Editor);
const APPROVER: Needs = Needs::Role(Role::Approver);
const ADMIN: Needs = Needs::Role(Role::Admin);

/// Which object a route's `{id}` names.
#[derive(Debug, Clone, Copy)]
enum Object {
    None,
    Recipe(usize),
    Revision,
    Request,
    User,
    Token,
}

/// The route table: method, path, who may call it, its `{id}`.
fn table() -> Vec<(&'static str, String, Needs, Object)> {
    let mut table = vec![
        (
            "GET",
            "/api/v3/openapi.json".to_owned(),
            Public,
            Object::None,
        ),
        (
            "POST",
            "/api/v1/telemetry/".to_owned(),
            Public,
            Object::None,
        ),
        (
            "GET",
            "/api/v3/recipe_revision/".to_owned(),
            VIEWER,
            Object::None,
        ),
        (
            "GET",
            "/api/v3/recipe_revision/{id}/".to_owned(),
            VIEWER,
            Object::Revision,
        ),
        (
            "POST",
            "/api/v3/recipe_revision/{id}/request_approval/".to_owned(),
            EDITOR,
            Object::Revision,
        ),
        (
            "GET",
            "/api/v3/approval_request/".to_owned(),
            VIEWER,
            Object::None,
        ),
        (
            "GET",
            "/api/v3/approval_request/{id}/".to_owned(),
            VIEWER,
            Object::Request,
        ),
        (
            "POST",
            "/api/v3/approval_request/{id}/approve/".to_owned(),
            APPROVER,
            Object::Request,
        ),
        (
            "POST",
            "/api/v3/approval_request/{id}/reject/".to_owned(),
            APPROVER,
            Object::Request,
        ),
        (
            "POST",
            "/api/v3/approval_request/{id}/close/".to_owned(),
            EDITOR,
            Object::Request,
        ),
        (
            "GET",
            "/api/v3/environment/".to_owned(),
            VIEWER,
            Object::None,
        ),
        (
            "POST",
            "/api/v3/environment/".to_owned(),
            ADMIN,
            Object::None,
        ),
        ("GET", "/api/v3/me/".to_owned(), Token, Object::None),
        ("GET", "/api/v3/user/".to_owned(), ADMIN, Object::None),
        ("POST", "/api/v3/user/".to_owned(), ADMIN, Object::None),
        ("GET", "/api/v3/user/{id}/".to_owned(), ADMIN, Object::User),
        (
            "PATCH",
            "/api/v3/user/{id}/".to_owned(),
            ADMIN,
            Object::User,
        ),
        (
            "POST",
            "/api/v3/user/{id}/token/".to_owned(),
            ADMIN,
            Object::User,
        ),
        ("GET", "/api/v3/token/".to_owned(), Token, Object::None),
        // Another user's token: only an admin (owners are tested in admin_api.rs).
        (
            "DELETE",
            "/api/v3/token/{id}/".to_owned(),
            ADMIN,
            Object::Token,
        ),
        (
            "GET",
            "/api/v3/signing_key/".to_owned(),
            VIEWER,
            Object::None,
        ),
        (
            "POST",
            "/api/v3/signing_key/rotate/".to_owned(),
            ADMIN,
            Object::None,
        ),
        ("GET", "/api/v3/audit/".to_owned(), VIEWER, Object::None),
        (
            "GET",
            "/api/v3/telemetry/enrollment/".to_owned(),
            VIEWER,
            Object::None,
        ),
    ];
    for (index, kind) in ["recipe", "experiment", "flight", "flag", "target_group"]
        .into_iter()
        .enumerate()
    {
        let base = format!("/api/v3/{kind}/");
        let item = Object::Recipe(index);
        table.extend([
            ("GET", base.clone(), VIEWER, Object::None),
            ("POST", base.clone(), EDITOR, Object::None),
            ("GET", format!("{base}{{id}}/"), VIEWER, item),
            ("PUT", format!("{base}{{id}}/"), EDITOR, item),
            ("PATCH", format!("{base}{{id}}/"), EDITOR, item),
            ("POST", format!("{base}{{id}}/enable/"), APPROVER, item),
            ("POST", format!("{base}{{id}}/disable/"), APPROVER, item),
            ("GET", format!("{base}{{id}}/history/"), VIEWER, item),
        ]);
    }
    table
}

#[test]
fn the_table_covers_every_documented_route() {
    let document: Value = serde_json::from_str(admin::openapi_json()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let public = operation.get("security").is_none();
            documented.insert((method.to_uppercase(), path.clone(), public));
        }
    }
    let tabled: BTreeSet<(String, String, bool)> = table()
        .into_iter()
        .map(|(m, p, needs, _)| (m.to_owned(), p, needs == Public))
        .collect();
    assert_eq!(tabled, documented);
}

#[tokio::test]
async fn every_route_enforces_its_role() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;

    // One object of each sort for the `{id}`s.
    let documents = [
        rollout("matrix"),
        json!({"id": "x@experiments", "xpiURL": "https://example.com/x.xpi",
               "xpiHash": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}),
        json!({"studyname": "s", "endBy": "2027-01-01"}),
        json!({"flag": "f", "value": true}),
        json!({"name": "g", "conditions": []}),
    ];
    let mut recipes = Vec::new();
    for (kind, document) in ["recipe", "experiment", "flight", "flag", "target_group"]
        .into_iter()
        .zip(documents)
    {
        let created = api
            .post(&format!("/api/v3/{kind}/"), &t.editor, document)
            .await;
        created.expect(201);
        recipes.push(created.id());
    }
    let recipe = api
        .get(&format!("/api/v3/recipe/{}/", recipes[0]), &t.viewer)
        .await;
    let revision = recipe.body["latest_revision"]["id"].as_i64().unwrap();
    let request = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{revision}/request_approval/"),
            &t.editor,
        )
        .await
        .id();
    let user = api
        .post("/api/v3/user/", &t.admin, json!({"username": "target"}))
        .await
        .id();
    let token = api
        .post(
            &format!("/api/v3/user/{user}/token/"),
            &t.admin,
            json!({"name": "t"}),
        )
        .await
        .id();

    let callers: [(&str, Option<&str>, &[Role]); 6] = [
        ("no token", None, &[]),
        ("no role", Some(&t.nobody), &[]),
        ("viewer", Some(&t.viewer), &[Role::Viewer]),
        ("editor", Some(&t.editor), &[Role::Editor, Role::Viewer]),
        (
            "approver",
            Some(&t.approver),
            &[Role::Approver, Role::Viewer],
        ),
        ("admin", Some(&t.admin), &Role::ALL),
    ];
    let mut checked = 0;
    for (method, path, needs, object) in table() {
        let id = match object {
            Object::None => 0,
            Object::Recipe(index) => recipes[index],
            Object::Revision => revision,
            Object::Request => request,
            Object::User => user,
            Object::Token => token,
        };
        let uri = path.replace("{id}", &id.to_string());
        let body = matches!(method, "POST" | "PUT" | "PATCH").then(|| json!({}));
        for (who, token, roles) in callers {
            let reply = api.call(method, &uri, token, body.clone()).await;
            let status = reply.status.as_u16();
            let allowed = match needs {
                Public => true,
                Token => token.is_some(),
                Needs::Role(role) => roles.contains(&role),
            };
            let context = format!("{method} {path} as {who}: {status} {}", reply.body);
            if allowed {
                assert_ne!(status, 401, "{context}");
                assert!(!(status == 403 && reply.code() == "forbidden"), "{context}");
            } else if token.is_none() {
                assert_eq!(status, 401, "{context}");
                assert_eq!(reply.code(), "unauthorized", "{context}");
                assert!(reply.headers.contains_key("www-authenticate"), "{context}");
            } else {
                assert_eq!(status, 403, "{context}");
                assert_eq!(reply.code(), "forbidden", "{context}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, table().len() * 6);
}

#[tokio::test]
async fn bad_tokens_are_unauthorised() {
    let api = TestApi::sqlite().await;
    for header in [
        "Bearer fdt_not-a-real-token",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "fdt_without_scheme",
    ] {
        let request = axum::http::Request::builder()
            .uri("/api/v3/recipe/")
            .header("authorization", header);
        let response = tower::ServiceExt::oneshot(
            api.app.clone(),
            request.body(axum::body::Body::empty()).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 401, "{header}");
    }
    let long = format!("fdt_{}", "a".repeat(5000));
    api.get("/api/v3/recipe/", &long).await.expect(401);
    // A revoked token stops working at once.
    let mine = api.get("/api/v3/token/", &api.tokens.editor).await;
    let id = mine.body[0]["id"].as_i64().unwrap();
    api.call(
        "DELETE",
        &format!("/api/v3/token/{id}/"),
        Some(&api.tokens.editor),
        None,
    )
    .await
    .expect(200);
    api.get("/api/v3/recipe/", &api.tokens.editor)
        .await
        .expect(401);
}
