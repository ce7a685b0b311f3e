//! The OpenAPI document is the router's: every documented operation is served, every served
//! route is documented, and `docs/openapi.json` is the document the code makes
//! (`UPDATE_OPENAPI=1 cargo test -p flightdeck-server --test http admin_openapi` rewrites it).

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::admin_support::TestApi;
use axum::http::StatusCode;
use flightdeck_server::admin;
use serde_json::Value;

/// Every route of docs/server.md's admin table (and the telemetry ingest), as
/// `(method, path)`: what the router must serve and the document must describe.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v3/openapi.json"),
    ("POST", "/api/v1/telemetry/"),
    ("GET", "/api/v3/recipe_revision/"),
    ("GET", "/api/v3/recipe_revision/{id}/"),
    ("POST", "/api/v3/recipe_revision/{id}/request_approval/"),
    ("GET", "/api/v3/approval_request/"),
    ("GET", "/api/v3/approval_request/{id}/"),
    ("POST", "/api/v3/approval_request/{id}/approve/"),
    ("POST", "/api/v3/approval_request/{id}/reject/"),
    ("POST", "/api/v3/approval_request/{id}/close/"),
    ("GET", "/api/v3/environment/"),
    ("POST", "/api/v3/environment/"),
    ("GET", "/api/v3/me/"),
    ("GET", "/api/v3/user/"),
    ("POST", "/api/v3/user/"),
    ("GET", "/api/v3/user/{id}/"),
    ("PATCH", "/api/v3/user/{id}/"),
    ("POST", "/api/v3/user/{id}/token/"),
    ("GET", "/api/v3/token/"),
    ("DELETE", "/api/v3/token/{id}/"),
    ("GET", "/api/v3/signing_key/"),
    ("POST", "/api/v3/signing_key/rotate/"),
    ("GET", "/api/v3/audit/"),
    ("GET", "/api/v3/telemetry/enrollment/"),
];

/// The recipe collections, one per kind.
pub const KIND_PATHS: &[&str] = &["recipe", "experiment", "flight", "flag", "target_group"];

fn expected_routes() -> BTreeSet<(String, String)> {
    let mut routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    for kind in KIND_PATHS {
        let base = format!("/api/v3/{kind}/");
        for (method, path) in [
            ("GET", base.clone()),
            ("POST", base.clone()),
            ("GET", format!("{base}{{id}}/")),
            ("PUT", format!("{base}{{id}}/")),
            ("PATCH", format!("{base}{{id}}/")),
            ("POST", format!("{base}{{id}}/enable/")),
            ("POST", format!("{base}{{id}}/disable/")),
            ("GET", format!("{base}{{id}}/history/")),
        ] {
            routes.insert((method.to_owned(), path));
        }
    }
    routes
}

fn documented_routes(document: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn the_document_describes_exactly_the_route_table() {
    let document: Value = serde_json::from_str(admin::openapi_json()).unwrap();
    assert_eq!(documented_routes(&document), expected_routes());
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let api = TestApi::sqlite().await;
    let document: Value = serde_json::from_str(admin::openapi_json()).unwrap();
    for (method, path) in documented_routes(&document) {
        let uri = path.replace("{id}", "1");
        let reply = api.raw(&method, &uri, None, None).await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        // The router's own 404 has no body; a handler's 404 says what was not found.
        assert!(
            !(reply.status == StatusCode::NOT_FOUND && reply.body.is_null()),
            "{method} {path} is not routed"
        );
        let operation = &document["paths"][&path][method.to_lowercase()];
        let public = operation.get("security").is_none();
        if public {
            assert_ne!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        } else {
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} must need a token"
            );
            assert_eq!(reply.code(), "unauthorized");
        }
    }
    // And nothing else is routed under /api/v3.
    let reply = api.raw("GET", "/api/v3/nothing/", None, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_document_is_served() {
    let api = TestApi::sqlite().await;
    let reply = api.raw("GET", "/api/v3/openapi.json", None, None).await;
    reply.expect(200);
    assert_eq!(
        reply.headers["content-type"].to_str().unwrap(),
        "application/json"
    );
    let expected: Value = serde_json::from_str(admin::openapi_json()).unwrap();
    assert_eq!(reply.body, expected);
    assert!(reply.body["openapi"].as_str().unwrap().starts_with("3."));
    assert!(
        reply.body["components"]["securitySchemes"]["bearer"].is_object(),
        "{:#}",
        reply.body["components"]
    );
}

#[test]
fn docs_openapi_json_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let current = format!("{}\n", admin::openapi_json());
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "docs/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p flightdeck-server --test http admin_openapi`"
    );
}
