//! The admin API over HTTP (the router, in process) and a real store: the approval workflow
//! (also against PostgreSQL when `FLIGHTDECK_TEST_POSTGRES_URL` is set), validation errors
//! naming fields, the other kinds, users, tokens, environments, signing keys, the audit log,
//! and the publish hook.

use crate::admin_support::{TestApi, rollback, rollout, with_postgres};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The workflow

async fn workflow(api: TestApi) {
    let t = &api.tokens;

    // Create: the Normandy shape, with the compiled filter and capabilities.
    let created = api
        .post(
            "/api/v3/recipe/",
            &t.editor,
            with(rollout("autoplay"), "comment", json!("first cut")),
        )
        .await;
    created.expect(201);
    let recipe_id = created.id();
    assert_eq!(
        created.headers["location"].to_str().unwrap(),
        format!("/api/v3/recipe/{recipe_id}/")
    );
    let body = &created.body;
    assert_eq!(body["kind"], "normandy");
    assert_eq!(body["environment"], "production");
    assert_eq!(body["enabled"], false);
    assert_eq!(body["is_approved"], false);
    assert_eq!(body["approved_revision"], Value::Null);
    assert_eq!(body["revision_created"], true);
    assert_eq!(body["warnings"], json!([]));
    let first = &body["latest_revision"];
    assert_eq!(first["name"], "Rollout autoplay");
    assert_eq!(first["action"], json!({"name": "preference-rollout"}));
    assert_eq!(first["data"]["action"], "preference-rollout");
    assert_eq!(first["filter_expression"], "normandy.channel == 'release'");
    assert!(
        first["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("action.preference-rollout")),
        "{first:#}"
    );
    assert_eq!(first["comment"], "first cut");
    assert_eq!(first["creator"]["username"], "edith");
    assert_eq!(first["recipe"]["id"], recipe_id);
    assert_eq!(first["approval_request"], Value::Null);
    let first_revision = first["id"].as_i64().unwrap();

    // Enabling needs an approved revision.
    let reply = api
        .post_empty(&format!("/api/v3/recipe/{recipe_id}/enable/"), &t.approver)
        .await;
    reply.expect(409);
    assert_eq!(reply.code(), "not_approved");

    // Request approval; approving needs a comment; the approver approves.
    let request = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{first_revision}/request_approval/"),
            &t.editor,
        )
        .await;
    request.expect(201);
    assert_eq!(request.body["state"], "pending");
    assert_eq!(request.body["approved"], Value::Null);
    assert_eq!(request.body["creator"]["username"], "edith");
    let request_id = request.id();
    let again = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{first_revision}/request_approval/"),
            &t.editor2,
        )
        .await;
    again.expect(409);
    assert_eq!(again.code(), "approval_exists");

    let no_comment = api
        .post(
            &format!("/api/v3/approval_request/{request_id}/approve/"),
            &t.approver,
            json!({}),
        )
        .await;
    no_comment.expect(400);
    assert_eq!(no_comment.fields(), ["comment"]);

    let approved = api
        .post(
            &format!("/api/v3/approval_request/{request_id}/approve/"),
            &t.approver,
            json!({"comment": "looks right"}),
        )
        .await;
    approved.expect(200);
    assert_eq!(approved.body["state"], "approved");
    assert_eq!(approved.body["approved"], true);
    assert_eq!(approved.body["approver"]["username"], "april");
    assert_eq!(approved.body["comment"], "looks right");
    assert_eq!(
        api.hook.take(),
        Vec::<Option<String>>::new(),
        "disabled: nothing published"
    );

    let recipe = api
        .get(&format!("/api/v3/recipe/{recipe_id}/"), &t.viewer)
        .await;
    recipe.expect(200);
    assert_eq!(recipe.body["is_approved"], true);
    assert_eq!(recipe.body["approved_revision"]["id"], first_revision);
    assert_eq!(
        recipe.body["latest_revision"]["approval_request"]["state"],
        "approved"
    );

    // Enable: published, so the hook hears it.
    let enabled = api
        .post_empty(&format!("/api/v3/recipe/{recipe_id}/enable/"), &t.approver)
        .await;
    enabled.expect(200);
    assert_eq!(enabled.body["enabled"], true);
    assert_eq!(api.hook.take(), [Some("production".to_owned())]);
    let twice = api
        .post_empty(&format!("/api/v3/recipe/{recipe_id}/enable/"), &t.approver)
        .await;
    twice.expect(409);
    assert_eq!(twice.code(), "already_enabled");

    // PATCH makes a new revision; the approved one stays published.
    let patched = api
        .call(
            "PATCH",
            &format!("/api/v3/recipe/{recipe_id}/"),
            Some(&t.editor2),
            Some(json!({"name": "Autoplay, take two", "comment": "rename"})),
        )
        .await;
    patched.expect(200);
    assert_eq!(patched.body["revision_created"], true);
    assert_eq!(patched.body["is_approved"], false);
    assert_eq!(patched.body["enabled"], true);
    assert_eq!(patched.body["approved_revision"]["id"], first_revision);
    let second = patched.body["latest_revision"].clone();
    assert_eq!(second["name"], "Autoplay, take two");
    assert_eq!(
        second["arguments"]["slug"], "autoplay",
        "PATCH keeps the other fields"
    );
    assert_eq!(second["parent_id"], first_revision);
    assert_eq!(second["creator"]["username"], "eddie");
    let second_revision = second["id"].as_i64().unwrap();
    assert!(api.hook.take().is_empty());

    // A pending request is dropped by the next revision.
    let pending = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{second_revision}/request_approval/"),
            &t.editor2,
        )
        .await;
    pending.expect(201);
    let pending_id = pending.id();
    let third = api
        .call(
            "PATCH",
            &format!("/api/v3/recipe/{recipe_id}/"),
            Some(&t.editor),
            Some(json!({"extra_filter_expression": "normandy.channel == 'beta'"})),
        )
        .await;
    third.expect(200);
    let third_revision = third.body["latest_revision"]["id"].as_i64().unwrap();
    api.get(
        &format!("/api/v3/approval_request/{pending_id}/"),
        &t.viewer,
    )
    .await
    .expect(404);
    let stale = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{second_revision}/request_approval/"),
            &t.editor,
        )
        .await;
    stale.expect(409);
    assert_eq!(stale.code(), "not_latest_revision");

    // Reject, then asking again is refused until the recipe is edited.
    let request = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{third_revision}/request_approval/"),
            &t.editor,
        )
        .await;
    request.expect(201);
    let rejected = api
        .post(
            &format!("/api/v3/approval_request/{}/reject/", request.id()),
            &t.approver,
            json!({"comment": "beta is not ready"}),
        )
        .await;
    rejected.expect(200);
    assert_eq!(rejected.body["approved"], false);
    let refused = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{third_revision}/request_approval/"),
            &t.editor,
        )
        .await;
    refused.expect(409);
    assert_eq!(refused.code(), "rejected_needs_edit");
    let decided = api
        .post(
            &format!("/api/v3/approval_request/{}/approve/", request.id()),
            &t.approver,
            json!({"comment": "changed my mind"}),
        )
        .await;
    decided.expect(409);
    assert_eq!(decided.code(), "not_pending");

    // PUT with the same document makes no revision; a changed one does.
    let latest_data = third.body["latest_revision"]["data"].clone();
    let same = api
        .call(
            "PUT",
            &format!("/api/v3/recipe/{recipe_id}/"),
            Some(&t.editor),
            Some(latest_data.clone()),
        )
        .await;
    same.expect(200);
    assert_eq!(same.body["revision_created"], false);
    assert_eq!(same.body["latest_revision"]["id"], third_revision);
    let mut changed = latest_data;
    changed["extra_filter_expression"] = json!("normandy.channel == 'release'");
    let fourth = api
        .call(
            "PUT",
            &format!("/api/v3/recipe/{recipe_id}/"),
            Some(&t.editor),
            Some(changed),
        )
        .await;
    fourth.expect(200);
    assert_eq!(fourth.body["revision_created"], true);
    let fourth_revision = fourth.body["latest_revision"]["id"].as_i64().unwrap();

    // Approving a revision of an enabled recipe publishes it.
    let request = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{fourth_revision}/request_approval/"),
            &t.editor,
        )
        .await;
    api.post(
        &format!("/api/v3/approval_request/{}/approve/", request.id()),
        &t.approver,
        json!({"comment": "ok"}),
    )
    .await
    .expect(200);
    assert_eq!(api.hook.take(), [Some("production".to_owned())]);
    let recipe = api
        .get(&format!("/api/v3/recipe/{recipe_id}/"), &t.viewer)
        .await;
    assert_eq!(recipe.body["approved_revision"]["id"], fourth_revision);
    assert_eq!(
        recipe.body["enabled"], true,
        "the enabled state carries over"
    );

    // History, newest first.
    let history = api
        .get(&format!("/api/v3/recipe/{recipe_id}/history/"), &t.viewer)
        .await;
    history.expect(200);
    let ids: Vec<i64> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            fourth_revision,
            third_revision,
            second_revision,
            first_revision
        ]
    );

    // Revision and approval-request listings.
    let revisions = api
        .get(
            &format!("/api/v3/recipe_revision/?recipe={recipe_id}"),
            &t.viewer,
        )
        .await;
    revisions.expect(200);
    assert_eq!(revisions.body.as_array().unwrap().len(), 4);
    let one = api
        .get(
            &format!("/api/v3/recipe_revision/{second_revision}/"),
            &t.viewer,
        )
        .await;
    one.expect(200);
    assert_eq!(one.body["name"], "Autoplay, take two");
    let requests = api
        .get(
            &format!("/api/v3/approval_request/?recipe={recipe_id}&state=rejected"),
            &t.viewer,
        )
        .await;
    requests.expect(200);
    assert_eq!(requests.body.as_array().unwrap().len(), 1);
    api.get("/api/v3/approval_request/?state=maybe", &t.viewer)
        .await
        .expect(400);

    // Disable: the hook hears it; disabling twice is a conflict.
    api.post_empty(&format!("/api/v3/recipe/{recipe_id}/disable/"), &t.approver)
        .await
        .expect(200);
    assert_eq!(api.hook.take(), [Some("production".to_owned())]);
    let reply = api
        .post_empty(&format!("/api/v3/recipe/{recipe_id}/disable/"), &t.approver)
        .await;
    reply.expect(409);
    assert_eq!(reply.code(), "already_disabled");

    // Close withdraws a pending request.
    let fifth = api
        .call(
            "PATCH",
            &format!("/api/v3/recipe/{recipe_id}/"),
            Some(&t.editor),
            Some(json!({"name": "five"})),
        )
        .await;
    let fifth_revision = fifth.body["latest_revision"]["id"].as_i64().unwrap();
    let request = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{fifth_revision}/request_approval/"),
            &t.editor,
        )
        .await;
    let closed = api
        .post_empty(
            &format!("/api/v3/approval_request/{}/close/", request.id()),
            &t.editor2,
        )
        .await;
    closed.expect(204);
    api.post_empty(
        &format!("/api/v3/recipe_revision/{fifth_revision}/request_approval/"),
        &t.editor,
    )
    .await
    .expect(201);

    // The audit log has who and when for each step.
    let audit = api
        .get(
            &format!("/api/v3/audit/?object_type=recipe&object_id={recipe_id}&limit=1000"),
            &t.viewer,
        )
        .await;
    audit.expect(200);
    let events = audit.body.as_array().unwrap();
    let find =
        |action: &str| -> Vec<&Value> { events.iter().filter(|e| e["action"] == action).collect() };
    let create = find("recipe.create");
    assert_eq!(create.len(), 1);
    assert_eq!(create[0]["actor"]["username"], "edith");
    assert_eq!(create[0]["at"], first["date_created"]);
    let approvals = find("approval.approve");
    assert_eq!(approvals.len(), 2);
    assert!(approvals.iter().all(|e| e["actor"]["username"] == "april"));
    assert_eq!(find("approval.reject").len(), 1);
    assert_eq!(find("approval.close").len(), 1);
    assert_eq!(find("recipe.enable")[0]["actor"]["username"], "april");
    assert_eq!(find("recipe.disable").len(), 1);
    // Newest first, and every time is from the test clock.
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
    assert!(
        times.iter().all(|t| t.starts_with("2027-01-15T")),
        "{times:?}"
    );
    let by_april = api
        .get(
            &format!("/api/v3/audit/?actor={}", api.user_id("april")),
            &t.viewer,
        )
        .await;
    assert!(
        by_april
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"]["username"] == "april")
    );
}

/// `value` with `key` set to `field`.
fn with(mut value: Value, key: &str, field: Value) -> Value {
    value[key] = field;
    value
}

#[tokio::test]
async fn workflow_on_sqlite() {
    workflow(TestApi::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_on_postgres() {
    with_postgres(|url| async move {
        workflow(TestApi::open(&url, None).await).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Peer approval

#[tokio::test]
async fn an_author_never_approves_their_own_revision() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;
    // The admin holds every role, and still cannot approve what they wrote in production.
    let created = api.post("/api/v3/recipe/", &t.admin, rollout("own")).await;
    created.expect(201);
    let revision = created.body["latest_revision"]["id"].as_i64().unwrap();
    let request = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{revision}/request_approval/"),
            &t.admin,
        )
        .await;
    let reply = api
        .post(
            &format!("/api/v3/approval_request/{}/approve/", request.id()),
            &t.admin,
            json!({"comment": "me"}),
        )
        .await;
    reply.expect(403);
    assert_eq!(reply.code(), "self_approval");

    // Nor what they asked approval for.
    let by_editor = api
        .post("/api/v3/recipe/", &t.editor, rollout("theirs"))
        .await;
    let revision = by_editor.body["latest_revision"]["id"].as_i64().unwrap();
    let request = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{revision}/request_approval/"),
            &t.admin,
        )
        .await;
    let reply = api
        .post(
            &format!("/api/v3/approval_request/{}/approve/", request.id()),
            &t.admin,
            json!({"comment": "me"}),
        )
        .await;
    reply.expect(403);
    assert_eq!(reply.code(), "self_approval");

    // In an environment without peer approval, they may.
    api.post(
        "/api/v3/environment/",
        &t.admin,
        json!({"name": "staging", "peerApproval": false}),
    )
    .await
    .expect(201);
    let staged = api
        .post(
            "/api/v3/recipe/",
            &t.admin,
            with(rollout("own"), "environment", json!("staging")),
        )
        .await;
    staged.expect(201);
    assert_eq!(staged.body["environment"], "staging");
    let revision = staged.body["latest_revision"]["id"].as_i64().unwrap();
    let request = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{revision}/request_approval/"),
            &t.admin,
        )
        .await;
    api.post(
        &format!("/api/v3/approval_request/{}/approve/", request.id()),
        &t.admin,
        json!({"comment": "staging"}),
    )
    .await
    .expect(200);
}

// ---------------------------------------------------------------------------------------------
// Validation

#[tokio::test]
async fn validation_errors_name_the_fields() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;

    let mut bad = rollout("x");
    bad["arguments"]["preferences"][0]
        .as_object_mut()
        .unwrap()
        .remove("value");
    bad["extra_filter_expression"] = json!("normandy.channel == ");
    bad["colour"] = json!("blue");
    let reply = api.post("/api/v3/recipe/", &t.editor, bad).await;
    reply.expect(400);
    assert_eq!(reply.code(), "validation_failed");
    let fields = reply.fields();
    assert!(fields.contains(&"colour".to_owned()), "{fields:?}");
    assert!(
        fields.contains(&"extra_filter_expression".to_owned()),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("arguments.preferences[0]")),
        "{fields:?}"
    );
    assert!(reply.body["error"]["message"].is_string());

    // Normandy's action_id is refused with a pointer to `action`.
    let mut with_id = rollout("y");
    with_id["action_id"] = json!(4);
    let reply = api.post("/api/v3/recipe/", &t.editor, with_id).await;
    reply.expect(400);
    assert_eq!(reply.fields(), ["action_id"]);

    // `action` as Normandy reads it back is accepted.
    let mut as_read = rollout("z");
    as_read["action"] = json!({"name": "preference-rollout"});
    api.post("/api/v3/recipe/", &t.editor, as_read)
        .await
        .expect(201);

    // Unknown environment, wrong types of comment/environment.
    let mut elsewhere = rollout("w");
    elsewhere["environment"] = json!("mars");
    let reply = api.post("/api/v3/recipe/", &t.editor, elsewhere).await;
    reply.expect(400);
    assert_eq!(reply.fields(), ["environment"]);
    let mut typed = rollout("v");
    typed["comment"] = json!(7);
    let reply = api.post("/api/v3/recipe/", &t.editor, typed).await;
    assert_eq!(reply.fields(), ["comment"]);

    // Not an object; not JSON (with the position); empty; trailing garbage.
    let reply = api.post("/api/v3/recipe/", &t.editor, json!([1])).await;
    reply.expect(400);
    assert_eq!(reply.fields(), ["(root)"]);
    let reply = api
        .raw(
            "POST",
            "/api/v3/recipe/",
            Some(&t.editor),
            Some(b"{\n  \"name\": }".to_vec()),
        )
        .await;
    reply.expect(400);
    assert_eq!(reply.code(), "bad_request");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 2 column"), "{message}");
    for body in [&b""[..], b"{} {}", b"\xff\xfe"] {
        let reply = api
            .raw(
                "POST",
                "/api/v3/recipe/",
                Some(&t.editor),
                Some(body.to_vec()),
            )
            .await;
        reply.expect(400);
        assert_eq!(reply.code(), "bad_request", "{body:?}");
    }

    // Typed bodies name the field too.
    let reply = api
        .post("/api/v3/user/", &t.admin, json!({"username": 5}))
        .await;
    reply.expect(400);
    assert_eq!(reply.code(), "validation_failed");
    assert_eq!(reply.fields(), ["username"]);
    let reply = api
        .post(
            "/api/v3/user/",
            &t.admin,
            json!({"username": "zoe", "roles": ["viewer", "boss"]}),
        )
        .await;
    assert_eq!(reply.fields(), ["roles[1]"]);

    // Bad ids and query parameters.
    api.get("/api/v3/recipe/abc/", &t.viewer).await.expect(404);
    api.get("/api/v3/recipe/?enabled=perhaps", &t.viewer)
        .await
        .expect(400);
    api.get("/api/v3/recipe/987654/", &t.viewer)
        .await
        .expect(404);

    // A body over 1 MiB.
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(1024 * 1024));
    let reply = api
        .raw(
            "POST",
            "/api/v3/recipe/",
            Some(&t.editor),
            Some(huge.into_bytes()),
        )
        .await;
    reply.expect(413);
    assert_eq!(reply.code(), "payload_too_large");

    // Nothing was stored by the refused writes.
    let list = api.get("/api/v3/recipe/", &t.viewer).await;
    assert_eq!(list.body["count"], 1);
}

#[tokio::test]
async fn slugs_and_rollbacks_are_checked_across_recipes() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;
    api.post("/api/v3/recipe/", &t.editor, rollout("shared"))
        .await
        .expect(201);

    // The same slug for another rollout in the environment.
    let reply = api
        .post("/api/v3/recipe/", &t.editor, rollout("shared"))
        .await;
    reply.expect(400);
    assert_eq!(reply.fields(), ["arguments.slug"]);

    // An experiment may use it (another family); a second experiment may not.
    let experiment = json!({
        "name": "Experiment",
        "action": "preference-experiment",
        "arguments": {
            "slug": "shared",
            "isEnrollmentPaused": false,
            "preferenceName": "browser.x",
            "preferenceType": "boolean",
            "branches": [
                {"slug": "on", "value": true, "ratio": 1},
                {"slug": "off", "value": false, "ratio": 1}
            ]
        },
        "extra_filter_expression": "true"
    });
    api.post("/api/v3/recipe/", &t.editor, experiment.clone())
        .await
        .expect(201);
    let mut multi = experiment.clone();
    multi["action"] = json!("multi-preference-experiment");
    multi["arguments"] = json!({
        "slug": "shared",
        "userFacingName": "Shared",
        "userFacingDescription": "A study",
        "isEnrollmentPaused": false,
        "branches": [{"slug": "a", "ratio": 1, "preferences": {
            "browser.x": {"preferenceType": "boolean", "preferenceBranchType": "default", "preferenceValue": true}
        }}]
    });
    let reply = api.post("/api/v3/recipe/", &t.editor, multi).await;
    reply.expect(400);
    assert_eq!(reply.fields(), ["arguments.slug"], "{:#}", reply.body);

    // Updating a recipe with its own slug is fine.
    let list = api
        .get("/api/v3/recipe/?action=preference-rollout", &t.viewer)
        .await;
    assert_eq!(list.body["count"], 1);
    let id = list.body["results"][0]["id"].as_i64().unwrap();
    api.call(
        "PATCH",
        &format!("/api/v3/recipe/{id}/"),
        Some(&t.editor),
        Some(json!({"name": "renamed"})),
    )
    .await
    .expect(200);

    // In another environment, the slug is free.
    api.post("/api/v3/environment/", &t.admin, json!({"name": "staging"}))
        .await
        .expect(201);
    let mut staged = rollout("shared");
    staged["environment"] = json!("staging");
    api.post("/api/v3/recipe/", &t.editor, staged)
        .await
        .expect(201);

    // A rollback must name an existing rollout of its environment.
    let reply = api
        .post("/api/v3/recipe/", &t.editor, rollback("nowhere"))
        .await;
    reply.expect(400);
    assert_eq!(reply.fields(), ["arguments.rolloutSlug"]);
    api.post("/api/v3/recipe/", &t.editor, rollback("shared"))
        .await
        .expect(201);

    // Identifying fields of the other kinds are unique too.
    let flag = json!({"flag": "checkout", "value": true});
    api.post("/api/v3/flag/", &t.editor, flag.clone())
        .await
        .expect(201);
    let reply = api.post("/api/v3/flag/", &t.editor, flag).await;
    reply.expect(400);
    assert_eq!(reply.fields(), ["flag"]);
}

#[tokio::test]
async fn a_rollback_and_its_rollout_are_never_enabled_together() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;
    let mut ids = Vec::new();
    for data in [rollout("r"), rollback("r")] {
        let created = api.post("/api/v3/recipe/", &t.editor, data).await;
        created.expect(201);
        let revision = created.body["latest_revision"]["id"].as_i64().unwrap();
        let request = api
            .post_empty(
                &format!("/api/v3/recipe_revision/{revision}/request_approval/"),
                &t.editor,
            )
            .await;
        api.post(
            &format!("/api/v3/approval_request/{}/approve/", request.id()),
            &t.approver,
            json!({"comment": "ok"}),
        )
        .await
        .expect(200);
        ids.push(created.id());
    }
    api.post_empty(&format!("/api/v3/recipe/{}/enable/", ids[0]), &t.approver)
        .await
        .expect(200);
    let reply = api
        .post_empty(&format!("/api/v3/recipe/{}/enable/", ids[1]), &t.approver)
        .await;
    reply.expect(409);
    assert_eq!(reply.code(), "rollout_conflict");
}

// ---------------------------------------------------------------------------------------------
// The other kinds

#[tokio::test]
async fn every_kind_has_its_routes() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;
    let documents = [
        (
            "experiment",
            "manifest-v1",
            json!({
                "id": "old-tab@experiments",
                "xpiURL": "https://example.com/old-tab.xpi",
                "xpiHash": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            }),
            ("xpiHash", json!("md5:abc")),
        ),
        (
            "flight",
            "flight",
            json!({"studyname": "pulse", "endBy": "2027-01-01", "flightplan": [{"action": "log", "msg": "hi"}]}),
            ("flightplan", json!("not a plan")),
        ),
        (
            "flag",
            "flag",
            json!({"flag": "new-checkout", "value": true}),
            ("conditions", json!("nope")),
        ),
        (
            "target_group",
            "target-group",
            json!({"name": "beta-users", "conditions": [{"property": "tier", "operator": "eq", "operand": "beta"}]}),
            ("conditions", json!(3)),
        ),
    ];
    let mut ids = Vec::new();
    for (path, kind, good, (field, bad_value)) in documents {
        let created = api
            .post(&format!("/api/v3/{path}/"), &t.editor, good.clone())
            .await;
        created.expect(201);
        assert_eq!(created.body["kind"], kind);
        assert_eq!(created.body["latest_revision"]["data"], good);
        // Only Normandy revisions have Normandy's top-level fields.
        assert!(
            created.body["latest_revision"]
                .get("filter_expression")
                .is_none()
        );
        let id = created.id();
        ids.push(id);

        let mut bad = good.clone();
        bad[field] = bad_value;
        let reply = api
            .call(
                "PUT",
                &format!("/api/v3/{path}/{id}/"),
                Some(&t.editor),
                Some(bad),
            )
            .await;
        reply.expect(400);
        assert!(
            reply.fields().iter().any(|f| f.starts_with(field)),
            "{path}: {:#}",
            reply.body
        );

        let list = api.get(&format!("/api/v3/{path}/"), &t.viewer).await;
        list.expect(200);
        assert_eq!(list.body["count"], 1, "{path}");
        let history = api
            .get(&format!("/api/v3/{path}/{id}/history/"), &t.viewer)
            .await;
        assert_eq!(history.body.as_array().unwrap().len(), 1);
        let reply = api
            .post_empty(&format!("/api/v3/{path}/{id}/enable/"), &t.approver)
            .await;
        assert_eq!(reply.code(), "not_approved");
    }
    // A recipe of one kind is not found under another kind's path.
    api.get(&format!("/api/v3/recipe/{}/", ids[0]), &t.viewer)
        .await
        .expect(404);
    api.get(&format!("/api/v3/flag/{}/", ids[0]), &t.viewer)
        .await
        .expect(404);
    // The recipe list holds Normandy recipes only.
    assert_eq!(api.get("/api/v3/recipe/", &t.viewer).await.body["count"], 0);
}

#[tokio::test]
async fn recipe_lists_filter_and_paginate() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;
    for i in 0..5 {
        api.post("/api/v3/recipe/", &t.editor, rollout(&format!("slug-{i}")))
            .await
            .expect(201);
    }
    let page = api.get("/api/v3/recipe/?page_size=2", &t.viewer).await;
    page.expect(200);
    assert_eq!(page.body["count"], 5);
    assert_eq!(page.body["results"].as_array().unwrap().len(), 2);
    assert_eq!(page.body["previous"], Value::Null);
    assert_eq!(page.body["next"], "/api/v3/recipe/?page_size=2&page=2");
    let last = api
        .get("/api/v3/recipe/?page_size=2&page=3", &t.viewer)
        .await;
    assert_eq!(last.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(last.body["next"], Value::Null);
    assert_eq!(last.body["previous"], "/api/v3/recipe/?page_size=2&page=2");
    // Normandy's text search: the text or any of its words, ignoring case.
    let text = api
        .get("/api/v3/recipe/?text=Rollout%20SLUG-3", &t.viewer)
        .await;
    assert_eq!(text.body["count"], 5);
    let text = api.get("/api/v3/recipe/?text=3", &t.viewer).await;
    assert_eq!(text.body["count"], 1);
    let text = api.get("/api/v3/recipe/?text=zebra", &t.viewer).await;
    assert_eq!(text.body["count"], 0);
    let enabled = api.get("/api/v3/recipe/?enabled=true", &t.viewer).await;
    assert_eq!(enabled.body["count"], 0);
    let staging = api
        .get("/api/v3/recipe/?environment=staging", &t.viewer)
        .await;
    assert_eq!(staging.body["count"], 0);
    api.get("/api/v3/recipe/?page=0", &t.viewer)
        .await
        .expect(400);
}

// ---------------------------------------------------------------------------------------------
// Users, tokens, environments, keys

#[tokio::test]
async fn users_and_tokens() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;

    let created = api
        .post(
            "/api/v3/user/",
            &t.admin,
            json!({"username": "zoe", "roles": ["editor"]}),
        )
        .await;
    created.expect(201);
    assert_eq!(created.body["roles"], json!(["editor"]));
    let zoe = created.id();
    let taken = api
        .post("/api/v3/user/", &t.admin, json!({"username": "zoe"}))
        .await;
    taken.expect(409);
    assert_eq!(taken.code(), "username_taken");

    // A token, shown once.
    let token = api
        .post(
            &format!("/api/v3/user/{zoe}/token/"),
            &t.admin,
            json!({"name": "laptop"}),
        )
        .await;
    token.expect(201);
    let secret = token.body["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("fdt_"));
    assert!(secret.starts_with(token.body["prefix"].as_str().unwrap()));
    let token_id = token.id();
    let me = api.get("/api/v3/me/", &secret).await;
    me.expect(200);
    assert_eq!(me.body["username"], "zoe");

    // Zoe lists her tokens (no secrets) but not other people's.
    let mine = api.get("/api/v3/token/", &secret).await;
    mine.expect(200);
    let mine = mine.body.as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert!(mine[0].get("token").is_none());
    assert!(!mine.iter().any(|t| t.to_string().contains(&secret)));
    api.get(
        &format!("/api/v3/token/?user={}", api.user_id("adam")),
        &secret,
    )
    .await
    .expect(403);
    let all = api.get("/api/v3/token/", &t.admin).await;
    assert_eq!(all.body.as_array().unwrap().len(), 7);

    // She cannot revoke someone else's token, but can revoke her own.
    let admins = api
        .get(
            &format!("/api/v3/token/?user={}", api.user_id("adam")),
            &t.admin,
        )
        .await;
    let admin_token = admins.body[0]["id"].as_i64().unwrap();
    api.call(
        "DELETE",
        &format!("/api/v3/token/{admin_token}/"),
        Some(&secret),
        None,
    )
    .await
    .expect(403);
    let revoked = api
        .call(
            "DELETE",
            &format!("/api/v3/token/{token_id}/"),
            Some(&secret),
            None,
        )
        .await;
    revoked.expect(200);
    assert!(revoked.body["revoked_at"].is_string());
    let reply = api.get("/api/v3/me/", &secret).await;
    reply.expect(401);
    assert_eq!(
        reply.headers["www-authenticate"].to_str().unwrap(),
        "Bearer realm=\"flightdeck\""
    );

    // Roles and disabling.
    let changed = api
        .call(
            "PATCH",
            &format!("/api/v3/user/{zoe}/"),
            Some(&t.admin),
            Some(json!({"roles": ["viewer", "approver"], "disabled": true})),
        )
        .await;
    changed.expect(200);
    assert_eq!(changed.body["roles"], json!(["viewer", "approver"]));
    assert_eq!(changed.body["disabled"], true);
    let read = api.get(&format!("/api/v3/user/{zoe}/"), &t.admin).await;
    assert_eq!(read.body["disabled"], true);
    let users = api.get("/api/v3/user/", &t.admin).await;
    assert_eq!(users.body.as_array().unwrap().len(), 7);

    // A disabled user's tokens stop working.
    let victor = api.user_id("victor");
    api.call(
        "PATCH",
        &format!("/api/v3/user/{victor}/"),
        Some(&t.admin),
        Some(json!({"disabled": true})),
    )
    .await
    .expect(200);
    api.get("/api/v3/recipe/", &t.viewer).await.expect(401);

    // An admin cannot lock themselves out.
    let adam = api.user_id("adam");
    for change in [json!({"roles": ["viewer"]}), json!({"disabled": true})] {
        let reply = api
            .call(
                "PATCH",
                &format!("/api/v3/user/{adam}/"),
                Some(&t.admin),
                Some(change),
            )
            .await;
        reply.expect(409);
        assert_eq!(reply.code(), "self_lockout");
    }

    // Unknown fields in typed bodies are refused.
    let reply = api
        .call(
            "PATCH",
            &format!("/api/v3/user/{zoe}/"),
            Some(&t.admin),
            Some(json!({"role": ["admin"]})),
        )
        .await;
    reply.expect(400);
    assert_eq!(reply.code(), "validation_failed");

    // Audit: token and user changes are recorded with who did them.
    let audit = api.get("/api/v3/audit/?object_type=token", &t.admin).await;
    let actions: Vec<(&str, &str)> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"]["username"].as_str().unwrap_or("(system)"),
            )
        })
        .collect();
    assert!(actions.contains(&("token.revoke", "zoe")), "{actions:?}");
    assert!(actions.contains(&("token.create", "adam")), "{actions:?}");
    assert!(
        actions.contains(&("token.create", "(system)")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn environments() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;
    let list = api.get("/api/v3/environment/", &t.viewer).await;
    list.expect(200);
    assert_eq!(list.body[0]["name"], "production");
    assert_eq!(list.body[0]["peer_approval"], true);
    let created = api
        .post(
            "/api/v3/environment/",
            &t.admin,
            json!({"name": "staging", "peer_approval": false}),
        )
        .await;
    created.expect(201);
    assert_eq!(created.body["peer_approval"], false);
    assert_eq!(api.hook.take(), [Some("staging".to_owned())]);
    let again = api
        .post("/api/v3/environment/", &t.admin, json!({"name": "staging"}))
        .await;
    again.expect(409);
    assert_eq!(again.code(), "environment_exists");
    let bad = api
        .post("/api/v3/environment/", &t.admin, json!({"name": "Not OK"}))
        .await;
    bad.expect(400);
    assert_eq!(bad.fields(), ["name"]);
    assert_eq!(
        api.get("/api/v3/environment/", &t.viewer)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn key_rotation_never_shows_private_keys() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;
    let empty = api.get("/api/v3/signing_key/", &t.viewer).await;
    assert_eq!(empty.body, json!([]));

    let first = api
        .post_empty("/api/v3/signing_key/rotate/", &t.admin)
        .await;
    first.expect(201);
    assert_eq!(first.body["active"], true);
    assert_eq!(api.hook.take(), [None]);
    let second = api
        .post_empty("/api/v3/signing_key/rotate/", &t.admin)
        .await;
    second.expect(201);
    assert_ne!(first.body["key_id"], second.body["key_id"]);

    let keys = api.get("/api/v3/signing_key/", &t.viewer).await;
    keys.expect(200);
    let keys = keys.body.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["active"], false);
    assert!(keys[0]["retired_at"].is_string());
    assert_eq!(keys[1]["active"], true);
    for key in keys {
        let pem = key["public_key_pem"].as_str().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
        flightdeck_client::signature::PublicKey::from_spki_pem("api", pem).unwrap();
    }

    // The private keys are stored, and appear in no answer.
    let stored = api.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 2);
    let answers = [
        first.body.to_string(),
        second.body.to_string(),
        api.get("/api/v3/signing_key/", &t.viewer)
            .await
            .body
            .to_string(),
        api.get("/api/v3/audit/?object_type=signing_key", &t.admin)
            .await
            .body
            .to_string(),
    ];
    for key in &stored {
        assert!(key.private_key_pem.contains("PRIVATE KEY"));
        let secret_line = key.private_key_pem.lines().nth(1).unwrap();
        for answer in &answers {
            assert!(!answer.contains("PRIVATE"), "{answer}");
            assert!(!answer.contains(secret_line), "{answer}");
        }
    }
    // The stored private key signs what the published public key verifies.
    let signer =
        flightdeck_client::signature::SigningKey::from_pem("stored", &stored[1].private_key_pem)
            .unwrap();
    assert_eq!(signer.key_id().as_str(), second.body["key_id"]);
}

#[tokio::test]
async fn the_hook_hears_only_publishing_writes() {
    let api = TestApi::sqlite().await;
    let t = &api.tokens;
    let created = api
        .post(
            "/api/v3/flag/",
            &t.editor,
            json!({"flag": "f", "value": true}),
        )
        .await;
    let id = created.id();
    let revision = created.body["latest_revision"]["id"].as_i64().unwrap();
    let request = api
        .post_empty(
            &format!("/api/v3/recipe_revision/{revision}/request_approval/"),
            &t.editor,
        )
        .await;
    api.post(
        &format!("/api/v3/approval_request/{}/approve/", request.id()),
        &t.approver,
        json!({"comment": "ok"}),
    )
    .await
    .expect(200);
    api.post("/api/v3/user/", &t.admin, json!({"username": "x"}))
        .await
        .expect(201);
    assert!(
        api.hook.take().is_empty(),
        "create, request, approve of a disabled recipe, users"
    );
    api.post_empty(&format!("/api/v3/flag/{id}/enable/"), &t.approver)
        .await
        .expect(200);
    assert_eq!(api.hook.take(), [Some("production".to_owned())]);
    // A refused write tells nobody.
    api.post_empty(&format!("/api/v3/flag/{id}/enable/"), &t.approver)
        .await
        .expect(409);
    assert!(api.hook.take().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Any body

mod any_body {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use crate::admin_support::{TestApi, rollout};

    const KEYS: &[&str] = &[
        "name",
        "action",
        "arguments",
        "slug",
        "preferences",
        "preferenceName",
        "value",
        "branches",
        "ratio",
        "rolloutSlug",
        "extra_filter_expression",
        "filter_object",
        "type",
        "channels",
        "flag",
        "conditions",
        "operator",
        "property",
        "operand",
        "id",
        "xpiURL",
        "xpiHash",
        "studyname",
        "endBy",
        "flightplan",
        "comment",
        "environment",
        "x",
    ];
    const TEXTS: &[&str] = &[
        "preference-rollout",
        "preference-rollback",
        "preference-experiment",
        "multi-preference-experiment",
        "channel",
        "eq",
        "sha256:00",
        "2027-01-01",
        "normandy.channel == 'release'",
        "((",
        "production",
        "",
        "é\u{0}",
    ];

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            prop::sample::select(TEXTS).prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(
                    |pairs| {
                        Value::Object(
                            pairs
                                .into_iter()
                                .map(|(k, v)| (k.to_owned(), v))
                                .collect::<Map<String, Value>>(),
                        )
                    }
                ),
            ]
        })
    }

    /// No body makes a write route fail inside the server or answer without a JSON error.
    #[test]
    fn writes_answer_every_body_with_a_decision() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let api = runtime.block_on(TestApi::sqlite());
        let existing = runtime
            .block_on(api.post("/api/v3/recipe/", &api.tokens.editor, rollout("base")))
            .id();
        let config = ProptestConfig {
            cases: 96,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        proptest!(config, |(body in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..64))| {
            for (method, path) in [
                ("POST", "/api/v3/recipe/".to_owned()),
                ("POST", "/api/v3/experiment/".to_owned()),
                ("POST", "/api/v3/flight/".to_owned()),
                ("POST", "/api/v3/flag/".to_owned()),
                ("POST", "/api/v3/target_group/".to_owned()),
                ("PATCH", format!("/api/v3/recipe/{existing}/")),
            ] {
                let reply = runtime.block_on(api.call(method, &path, Some(&api.tokens.editor), Some(body.clone())));
                let status = reply.status.as_u16();
                prop_assert!(matches!(status, 200 | 201 | 400), "{method} {path}: {status} {}", reply.body);
                if status == 400 {
                    prop_assert!(!reply.code().is_empty(), "{}", reply.body);
                }
                let reply = runtime.block_on(api.raw(method, &path, Some(&api.tokens.editor), Some(bytes.clone())));
                prop_assert!(matches!(reply.status.as_u16(), 200 | 201 | 400), "{}", reply.body);
            }
            let reply = runtime.block_on(api.call("POST", "/api/v1/telemetry/", None, Some(body.clone())));
            prop_assert!(matches!(reply.status.as_u16(), 200 | 400 | 413 | 422), "{}", reply.body);
        });
    }
}
