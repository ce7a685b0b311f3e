//! The store's contract: every test runs against SQLite (a temporary file) and against
//! PostgreSQL when `FLIGHTDECK_TEST_POSTGRES_URL` is set (a fresh schema per test, dropped at
//! the end). Both backends must behave identically; where they cannot (change notices), the
//! test says what each must do.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use flightdeck_store::testing::with_postgres_schema;
use flightdeck_store::{
    Actor, ApprovalRequestFilter, ApprovalState, AuditFilter, Change, Conflict, EnrollmentFilter,
    IngestEvent, Kind, NewSigningKey, PublishedItem, RecipeFilter, RevisionFilter, Role,
    SigningKeyRecord, Store, StoreError,
};
use jiff::Timestamp;
use serde_json::{Value, json};

/// One test's database: a SQLite file in a temporary directory, or a PostgreSQL schema.
#[derive(Clone)]
struct TestDb {
    url: String,
    /// The PostgreSQL schema, `None` on SQLite.
    schema: Option<String>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl TestDb {
    /// A new handle on the test's database (migrations run again, as at every start).
    async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    fn is_postgres(&self) -> bool {
        self.schema.is_some()
    }
}

async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("flightdeck.db").display());
    let db = TestDb {
        url,
        schema: None,
        _dir: Some(Arc::new(dir)),
    };
    test(db).await;
}

async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_postgres_schema("store", |url, schema| {
        test(TestDb {
            url,
            schema: Some(schema),
            _dir: None,
        })
    })
    .await;
}

/// Declares each test once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_postgres(super::$name).await;
                }
            )*
        }
    };
}

contract!(
    migrations_are_idempotent_and_data_survives_reopen,
    production_is_seeded_with_peer_approval,
    users,
    tokens,
    environments,
    recipes_and_revisions,
    approval_workflow,
    peer_approval_only_where_required,
    enabled_state_and_carryover,
    rollbacks_and_their_rollouts_are_never_enabled_together,
    published_items_are_approved_and_enabled_only,
    publication_serials,
    signing_keys,
    audit_log,
    telemetry_ingest_and_counts,
    concurrent_ingest_of_one_batch_counts_once,
    concurrent_publication_from_two_handles,
    publish_reads_content_and_serial_together,
    concurrent_approval_from_two_handles,
    change_notices,
);

// ---------------------------------------------------------------------------------------------
// Helpers

/// A fixed time, `seconds` after an arbitrary start.
fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) -> Conflict {
    match result {
        Err(StoreError::Conflict(conflict)) => conflict,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) -> &'static str {
    match result {
        Err(StoreError::NotFound { what, .. }) => what,
        other => panic!("expected not found, got {other:?}"),
    }
}

/// An author, a second editor and an approver.
struct People {
    author: Actor,
    editor: Actor,
    approver: Actor,
}

async fn people(store: &Store) -> People {
    let mut ids = Vec::new();
    for (name, roles) in [
        ("author", vec![Role::Editor]),
        ("editor", vec![Role::Editor]),
        ("approver", vec![Role::Approver, Role::Editor]),
    ] {
        let user = store
            .create_user(name, &roles, Actor::System, at(0))
            .await
            .unwrap();
        ids.push(Actor::User(user.id));
    }
    People {
        author: ids[0],
        editor: ids[1],
        approver: ids[2],
    }
}

fn rollout(slug: &str) -> Value {
    json!({
        "name": format!("rollout {slug}"),
        "action": "preference-rollout",
        "arguments": {"slug": slug, "preferences": [{"preferenceName": "a.b", "value": 1}]},
        "extra_filter_expression": "true",
    })
}

fn rollback(rollout_slug: &str) -> Value {
    json!({
        "name": format!("rollback {rollout_slug}"),
        "action": "preference-rollback",
        "arguments": {"rolloutSlug": rollout_slug},
        "extra_filter_expression": "true",
    })
}

/// Creates a recipe and gets its first revision approved (by the approver).
async fn approved_recipe(
    store: &Store,
    people: &People,
    environment: &str,
    data: Value,
) -> flightdeck_store::Recipe {
    let (recipe, revision) = store
        .create_recipe(
            Kind::Normandy,
            environment,
            &data,
            "new",
            people.author,
            at(10),
        )
        .await
        .unwrap();
    let request = store
        .request_approval(revision.id, people.author, at(11))
        .await
        .unwrap();
    store
        .approve(request.id, "ok", people.approver, at(12))
        .await
        .unwrap();
    store.recipe(recipe.id).await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests

async fn migrations_are_idempotent_and_data_survives_reopen(db: TestDb) {
    let store = db.open().await;
    let user = store
        .create_user("ada", &[Role::Admin], Actor::System, at(0))
        .await
        .unwrap();
    store.ping().await.unwrap();
    store.shutdown().await;
    assert!(store.ping().await.is_err());

    for _ in 0..2 {
        let store = db.open().await;
        assert_eq!(store.user_by_name("ada").await.unwrap(), user);
        let environments = store.list_environments().await.unwrap();
        assert_eq!(environments.len(), 1, "production is seeded once");
        store.shutdown().await;
    }
}

async fn production_is_seeded_with_peer_approval(db: TestDb) {
    let store = db.open().await;
    let production = store.environment("production").await.unwrap();
    assert_eq!(production.name, "production");
    assert!(production.peer_approval);
    assert_eq!(not_found(store.environment("nowhere").await), "environment");
    assert_eq!(
        store.backend_name(),
        if db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    );
}

async fn users(db: TestDb) {
    let store = db.open().await;
    let ada = store
        .create_user(
            "ada",
            &[Role::Editor, Role::Viewer, Role::Editor],
            Actor::System,
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(ada.username, "ada");
    assert_eq!(ada.roles, [Role::Viewer, Role::Editor]);
    assert_eq!(ada.created_at, at(1));
    assert!(!ada.disabled);
    assert!(ada.has_role(Role::Editor) && !ada.has_role(Role::Approver));
    assert_eq!(
        conflict(store.create_user("ada", &[], Actor::System, at(2)).await),
        Conflict::UsernameTaken
    );

    let bob = store
        .create_user("bob", &[Role::Admin], Actor::User(ada.id), at(3))
        .await
        .unwrap();
    assert!(bob.has_role(Role::Approver), "admin holds every role");
    assert_eq!(store.user(ada.id).await.unwrap(), ada);
    assert_eq!(store.user_by_name("bob").await.unwrap(), bob);
    assert_eq!(not_found(store.user(9999).await), "user");
    assert_eq!(not_found(store.user_by_name("eve").await), "user");
    assert_eq!(
        store.list_users().await.unwrap(),
        [ada.clone(), bob.clone()]
    );

    let ada = store
        .set_roles(ada.id, &[Role::Approver], Actor::User(bob.id), at(4))
        .await
        .unwrap();
    assert_eq!(ada.roles, [Role::Approver]);
    let ada = store
        .set_disabled(ada.id, true, Actor::User(bob.id), at(5))
        .await
        .unwrap();
    assert!(ada.disabled);
    assert_eq!(
        not_found(
            store
                .set_roles(9999, &[Role::Viewer], Actor::System, at(6))
                .await
        ),
        "user"
    );
    assert_eq!(
        not_found(store.set_disabled(9999, true, Actor::System, at(6)).await),
        "user"
    );

    let filter = AuditFilter {
        object_type: Some("user".to_owned()),
        object_id: Some(ada.id),
        ..AuditFilter::default()
    };
    let actions: Vec<String> = store
        .audit_events(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.action)
        .collect();
    assert_eq!(actions, ["user.disable", "user.set_roles", "user.create"]);
}

async fn tokens(db: TestDb) {
    let store = db.open().await;
    let ada = store
        .create_user("ada", &[Role::Editor], Actor::System, at(0))
        .await
        .unwrap();
    let bob = store
        .create_user("bob", &[Role::Viewer], Actor::System, at(0))
        .await
        .unwrap();
    let token = store
        .create_token(
            ada.id,
            "laptop",
            "hash-1",
            "fdk_ab",
            Actor::User(ada.id),
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(
        (token.user_id, token.name.as_str(), token.prefix.as_str()),
        (ada.id, "laptop", "fdk_ab")
    );
    assert_eq!(token.created_at, at(1));
    assert_eq!(token.revoked_at, None);
    let bob_token = store
        .create_token(bob.id, "ci", "hash-2", "fdk_cd", Actor::System, at(2))
        .await
        .unwrap();
    assert_eq!(
        conflict(
            store
                .create_token(bob.id, "again", "hash-1", "fdk_ab", Actor::System, at(3))
                .await
        ),
        Conflict::TokenExists
    );
    assert_eq!(
        not_found(
            store
                .create_token(9999, "x", "hash-3", "fdk_ef", Actor::System, at(3))
                .await
        ),
        "user"
    );

    assert_eq!(
        store.authenticate("hash-1").await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(
        store.authenticate("hash-2").await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(store.authenticate("nope").await.unwrap(), None);
    assert_eq!(
        store.list_tokens(None).await.unwrap(),
        [token.clone(), bob_token.clone()]
    );
    assert_eq!(
        store.list_tokens(Some(bob.id)).await.unwrap(),
        std::slice::from_ref(&bob_token)
    );
    assert_eq!(store.token(token.id).await.unwrap(), token);
    assert_eq!(not_found(store.token(9999).await), "token");

    let revoked = store
        .revoke_token(token.id, Actor::User(ada.id), at(4))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at(4)));
    assert_eq!(store.authenticate("hash-1").await.unwrap(), None);
    assert_eq!(
        conflict(store.revoke_token(token.id, Actor::System, at(5)).await),
        Conflict::AlreadyRevoked
    );
    assert_eq!(
        not_found(store.revoke_token(9999, Actor::System, at(5)).await),
        "token"
    );

    store
        .set_disabled(bob.id, true, Actor::System, at(6))
        .await
        .unwrap();
    assert_eq!(
        store.authenticate("hash-2").await.unwrap(),
        None,
        "a disabled user's tokens do not authenticate"
    );
    store
        .set_disabled(bob.id, false, Actor::System, at(7))
        .await
        .unwrap();
    assert!(store.authenticate("hash-2").await.unwrap().is_some());
}

async fn environments(db: TestDb) {
    let store = db.open().await;
    let staging = store
        .create_environment("staging", false, Actor::System, at(1))
        .await
        .unwrap();
    assert_eq!(staging.name, "staging");
    assert!(!staging.peer_approval);
    assert_eq!(staging.created_at, at(1));
    assert_eq!(
        conflict(
            store
                .create_environment("staging", true, Actor::System, at(2))
                .await
        ),
        Conflict::EnvironmentExists
    );
    assert_eq!(
        conflict(
            store
                .create_environment("production", true, Actor::System, at(2))
                .await
        ),
        Conflict::EnvironmentExists
    );
    let names: Vec<String> = store
        .list_environments()
        .await
        .unwrap()
        .into_iter()
        .map(|environment| environment.name)
        .collect();
    assert_eq!(names, ["production", "staging"]);
    assert_eq!(store.environment("staging").await.unwrap(), staging);
}

async fn recipes_and_revisions(db: TestDb) {
    let store = db.open().await;
    let people = people(&store).await;
    store
        .create_environment("staging", false, Actor::System, at(0))
        .await
        .unwrap();
    // Key order as the author wrote it, kept on the way back.
    let data: Value =
        serde_json::from_str(r#"{"zeta": 1, "alpha": {"b": 2.5, "a": [1, "x"]}, "name": "r"}"#)
            .unwrap();
    let (recipe, first) = store
        .create_recipe(
            Kind::Normandy,
            "production",
            &data,
            "first",
            people.author,
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(recipe.kind, Kind::Normandy);
    assert_eq!(recipe.environment, "production");
    assert_eq!(recipe.latest_revision_id, first.id);
    assert_eq!(recipe.approved_revision_id, None);
    assert!(!recipe.enabled);
    assert_eq!((recipe.created_at, recipe.updated_at), (at(1), at(1)));
    assert_eq!(first.recipe_id, recipe.id);
    assert_eq!(first.parent_id, None);
    assert_eq!(first.comment, "first");
    assert_eq!(first.author_id, people.author.user_id());
    assert_eq!(first.author.as_deref(), Some("author"));
    assert_eq!(first.approval_request, None);
    assert_eq!(
        serde_json::to_string(&first.data).unwrap(),
        serde_json::to_string(&data).unwrap()
    );

    // The same document, differently spelled: no new revision, nothing audited.
    let same: Value =
        serde_json::from_str(r#"{"name": "r", "alpha": {"a": [1.0, "x"], "b": 2.5}, "zeta": 1.0}"#)
            .unwrap();
    let (unchanged, latest, created) = store
        .update_recipe(recipe.id, &same, "noop", people.editor, at(2))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(latest, first);
    assert_eq!(unchanged, recipe);

    let changed = json!({"name": "r", "zeta": 2});
    let (updated, second, created) = store
        .update_recipe(recipe.id, &changed, "second", people.editor, at(3))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(second.parent_id, Some(first.id));
    assert_eq!(second.data, changed);
    assert_eq!(second.author.as_deref(), Some("editor"));
    assert_eq!(updated.latest_revision_id, second.id);
    assert_eq!(updated.updated_at, at(3));
    assert_eq!(store.revision(first.id).await.unwrap(), first);
    assert_eq!(store.recipe(recipe.id).await.unwrap(), updated);

    let history = store.history(recipe.id).await.unwrap();
    assert_eq!(history, [second.clone(), first.clone()]);

    let (flag, flag_revision) = store
        .create_recipe(
            Kind::Flag,
            "staging",
            &json!({"name": "f"}),
            "",
            people.author,
            at(4),
        )
        .await
        .unwrap();
    let ids = |recipes: Vec<flightdeck_store::Recipe>| -> Vec<i64> {
        recipes.into_iter().map(|recipe| recipe.id).collect()
    };
    let all = store.list_recipes(&RecipeFilter::default()).await.unwrap();
    assert_eq!(ids(all), [recipe.id, flag.id]);
    let staging_only = RecipeFilter {
        environment: Some("staging".to_owned()),
        ..RecipeFilter::default()
    };
    assert_eq!(
        ids(store.list_recipes(&staging_only).await.unwrap()),
        [flag.id]
    );
    let normandy_only = RecipeFilter {
        kind: Some(Kind::Normandy),
        ..RecipeFilter::default()
    };
    assert_eq!(
        ids(store.list_recipes(&normandy_only).await.unwrap()),
        [recipe.id]
    );
    let enabled_only = RecipeFilter {
        enabled: Some(true),
        ..RecipeFilter::default()
    };
    assert!(store.list_recipes(&enabled_only).await.unwrap().is_empty());
    let one = RecipeFilter {
        limit: Some(1),
        ..RecipeFilter::default()
    };
    assert_eq!(ids(store.list_recipes(&one).await.unwrap()), [recipe.id]);

    let revision_ids = |revisions: Vec<flightdeck_store::Revision>| -> Vec<i64> {
        revisions.into_iter().map(|revision| revision.id).collect()
    };
    let all = store
        .list_revisions(&RevisionFilter::default())
        .await
        .unwrap();
    assert_eq!(
        revision_ids(all),
        [flag_revision.id, second.id, first.id],
        "newest first"
    );
    let of_recipe = RevisionFilter {
        recipe_id: Some(recipe.id),
        limit: Some(1),
        ..RevisionFilter::default()
    };
    assert_eq!(
        revision_ids(store.list_revisions(&of_recipe).await.unwrap()),
        [second.id]
    );
    let of_staging = RevisionFilter {
        environment: Some("staging".to_owned()),
        ..RevisionFilter::default()
    };
    assert_eq!(
        revision_ids(store.list_revisions(&of_staging).await.unwrap()),
        [flag_revision.id]
    );

    assert_eq!(
        not_found(
            store
                .create_recipe(
                    Kind::Flight,
                    "nowhere",
                    &json!({}),
                    "",
                    people.author,
                    at(5)
                )
                .await
        ),
        "environment"
    );
    assert_eq!(
        not_found(
            store
                .update_recipe(9999, &json!({}), "", people.author, at(5))
                .await
        ),
        "recipe"
    );
    assert_eq!(not_found(store.recipe(9999).await), "recipe");
    assert_eq!(not_found(store.revision(9999).await), "revision");
    assert_eq!(not_found(store.history(9999).await), "recipe");

    let actions: Vec<String> = store
        .audit_events(&AuditFilter {
            object_type: Some("recipe".to_owned()),
            object_id: Some(recipe.id),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.action)
        .collect();
    assert_eq!(actions, ["recipe.update", "recipe.create"]);
}

async fn approval_workflow(db: TestDb) {
    let store = db.open().await;
    let people = people(&store).await;
    let (recipe, first) = store
        .create_recipe(
            Kind::Flight,
            "production",
            &json!({"studyname": "a"}),
            "",
            people.author,
            at(1),
        )
        .await
        .unwrap();

    let request = store
        .request_approval(first.id, people.author, at(2))
        .await
        .unwrap();
    assert_eq!(request.state, ApprovalState::Pending);
    assert_eq!(
        (request.revision_id, request.recipe_id),
        (first.id, recipe.id)
    );
    assert_eq!(request.creator.as_deref(), Some("author"));
    assert_eq!((request.approver_id, request.decided_at), (None, None));
    assert_eq!(request.created_at, at(2));
    assert_eq!(store.approval_request(request.id).await.unwrap(), request);
    assert_eq!(
        store.revision(first.id).await.unwrap().approval_request,
        Some(request.clone())
    );
    assert_eq!(
        conflict(store.request_approval(first.id, people.editor, at(3)).await),
        Conflict::ApprovalExists
    );

    // A new revision deletes the pending request of the previous one.
    let (_, second, _) = store
        .update_recipe(
            recipe.id,
            &json!({"studyname": "b"}),
            "",
            people.author,
            at(4),
        )
        .await
        .unwrap();
    assert_eq!(
        not_found(store.approval_request(request.id).await),
        "approval request"
    );
    assert_eq!(
        store.revision(first.id).await.unwrap().approval_request,
        None
    );
    assert_eq!(
        conflict(store.request_approval(first.id, people.author, at(5)).await),
        Conflict::NotLatestRevision
    );

    // Rejected: no new request until the recipe is edited.
    let request = store
        .request_approval(second.id, people.author, at(6))
        .await
        .unwrap();
    let rejected = store
        .reject(request.id, "no", people.approver, at(7))
        .await
        .unwrap();
    assert_eq!(rejected.state, ApprovalState::Rejected);
    assert_eq!(rejected.approver.as_deref(), Some("approver"));
    assert_eq!(rejected.comment.as_deref(), Some("no"));
    assert_eq!(rejected.decided_at, Some(at(7)));
    assert_eq!(
        conflict(
            store
                .request_approval(second.id, people.author, at(8))
                .await
        ),
        Conflict::RejectedNeedsEdit
    );
    for result in [
        store.approve(request.id, "", people.approver, at(8)).await,
        store.reject(request.id, "", people.approver, at(8)).await,
        store.close(request.id, people.author, at(8)).await,
    ] {
        assert_eq!(conflict(result), Conflict::NotPending);
    }

    // Closed: the request is gone and may be made again.
    let (_, third, _) = store
        .update_recipe(
            recipe.id,
            &json!({"studyname": "c"}),
            "",
            people.author,
            at(9),
        )
        .await
        .unwrap();
    let request = store
        .request_approval(third.id, people.author, at(10))
        .await
        .unwrap();
    let closed = store
        .close(request.id, people.author, at(11))
        .await
        .unwrap();
    assert_eq!(closed, request);
    assert_eq!(
        not_found(store.close(request.id, people.author, at(12)).await),
        "approval request"
    );
    let request = store
        .request_approval(third.id, people.author, at(13))
        .await
        .unwrap();
    assert_ne!(
        request.id, closed.id,
        "ids of closed requests are not reused"
    );

    let approved = store
        .approve(request.id, "fine", people.approver, at(14))
        .await
        .unwrap();
    assert_eq!(approved.state, ApprovalState::Approved);
    assert_eq!(approved.approver_id, people.approver.user_id());
    assert_eq!(approved.comment.as_deref(), Some("fine"));
    let recipe = store.recipe(recipe.id).await.unwrap();
    assert_eq!(recipe.approved_revision_id, Some(third.id));
    assert!(!recipe.enabled);
    assert_eq!(
        conflict(
            store
                .request_approval(third.id, people.author, at(15))
                .await
        ),
        Conflict::ApprovalExists
    );
    assert_eq!(
        conflict(store.approve(request.id, "", people.approver, at(15)).await),
        Conflict::NotPending
    );
    assert_eq!(
        not_found(store.approve(9999, "", people.approver, at(15)).await),
        "approval request"
    );
    assert_eq!(
        not_found(store.request_approval(9999, people.author, at(15)).await),
        "revision"
    );

    let states = |state| ApprovalRequestFilter {
        recipe_id: Some(recipe.id),
        state: Some(state),
        ..ApprovalRequestFilter::default()
    };
    let approved_list = store
        .list_approval_requests(&states(ApprovalState::Approved))
        .await
        .unwrap();
    assert_eq!(approved_list, std::slice::from_ref(&approved));
    let rejected_list = store
        .list_approval_requests(&states(ApprovalState::Rejected))
        .await
        .unwrap();
    assert_eq!(rejected_list, std::slice::from_ref(&rejected));
    let all = store
        .list_approval_requests(&ApprovalRequestFilter {
            environment: Some("production".to_owned()),
            ..ApprovalRequestFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all, [approved, rejected], "newest first");
    let elsewhere = store
        .list_approval_requests(&ApprovalRequestFilter {
            environment: Some("staging".to_owned()),
            ..ApprovalRequestFilter::default()
        })
        .await
        .unwrap();
    assert!(elsewhere.is_empty());
}

async fn peer_approval_only_where_required(db: TestDb) {
    let store = db.open().await;
    let people = people(&store).await;
    store
        .create_environment("staging", false, Actor::System, at(0))
        .await
        .unwrap();

    // Production: neither the author nor whoever asked may approve.
    let (_, revision) = store
        .create_recipe(
            Kind::Flag,
            "production",
            &json!({"name": "f"}),
            "",
            people.approver,
            at(1),
        )
        .await
        .unwrap();
    let request = store
        .request_approval(revision.id, people.approver, at(2))
        .await
        .unwrap();
    assert_eq!(
        conflict(store.approve(request.id, "", people.approver, at(3)).await),
        Conflict::SelfApproval
    );
    let (_, revision) = store
        .create_recipe(
            Kind::Flag,
            "production",
            &json!({"name": "g"}),
            "",
            people.author,
            at(4),
        )
        .await
        .unwrap();
    let request = store
        .request_approval(revision.id, people.approver, at(5))
        .await
        .unwrap();
    assert_eq!(
        conflict(store.approve(request.id, "", people.approver, at(6)).await),
        Conflict::SelfApproval,
        "the request's creator may not approve it either"
    );
    assert_eq!(
        conflict(store.approve(request.id, "", people.author, at(6)).await),
        Conflict::SelfApproval
    );
    store
        .approve(request.id, "", people.editor, at(7))
        .await
        .unwrap();

    // Staging: self-approval is allowed.
    let (recipe, revision) = store
        .create_recipe(
            Kind::TargetGroup,
            "staging",
            &json!({"name": "t"}),
            "",
            people.approver,
            at(8),
        )
        .await
        .unwrap();
    let request = store
        .request_approval(revision.id, people.approver, at(9))
        .await
        .unwrap();
    store
        .approve(request.id, "mine", people.approver, at(10))
        .await
        .unwrap();
    assert_eq!(
        store.recipe(recipe.id).await.unwrap().approved_revision_id,
        Some(revision.id)
    );
}

async fn enabled_state_and_carryover(db: TestDb) {
    let store = db.open().await;
    let people = people(&store).await;
    let (recipe, first) = store
        .create_recipe(
            Kind::ManifestV1,
            "production",
            &json!({"id": "x", "v": 1}),
            "",
            people.author,
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(
        conflict(
            store
                .set_enabled(recipe.id, true, people.approver, at(2))
                .await
        ),
        Conflict::NotApproved
    );
    assert_eq!(
        conflict(
            store
                .set_enabled(recipe.id, false, people.approver, at(2))
                .await
        ),
        Conflict::NotApproved
    );
    assert_eq!(
        not_found(store.set_enabled(9999, true, people.approver, at(2)).await),
        "recipe"
    );
    let request = store
        .request_approval(first.id, people.author, at(3))
        .await
        .unwrap();
    store
        .approve(request.id, "", people.approver, at(4))
        .await
        .unwrap();
    assert_eq!(
        conflict(
            store
                .set_enabled(recipe.id, false, people.approver, at(5))
                .await
        ),
        Conflict::AlreadyDisabled
    );
    let enabled = store
        .set_enabled(recipe.id, true, people.approver, at(5))
        .await
        .unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.updated_at, at(5));
    assert_eq!(
        conflict(
            store
                .set_enabled(recipe.id, true, people.approver, at(6))
                .await
        ),
        Conflict::AlreadyEnabled
    );

    // A new revision approved while enabled stays enabled, as a carried-over state.
    let (_, second, _) = store
        .update_recipe(
            recipe.id,
            &json!({"id": "x", "v": 2}),
            "",
            people.author,
            at(7),
        )
        .await
        .unwrap();
    let published = store.published_items("production").await.unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0].revision_id, first.id,
        "the latest revision is not published before approval"
    );
    let request = store
        .request_approval(second.id, people.author, at(8))
        .await
        .unwrap();
    store
        .approve(request.id, "", people.approver, at(9))
        .await
        .unwrap();
    let states = store.enabled_states(recipe.id).await.unwrap();
    assert_eq!(states.len(), 2);
    let (carried, original) = (&states[0], &states[1]);
    assert_eq!(
        (
            original.revision_id,
            original.enabled,
            original.carryover_from
        ),
        (first.id, true, None)
    );
    assert_eq!(original.creator.as_deref(), Some("approver"));
    assert_eq!(original.created_at, at(5));
    assert_eq!(
        (carried.revision_id, carried.enabled, carried.carryover_from),
        (second.id, true, Some(original.id))
    );
    let recipe_now = store.recipe(recipe.id).await.unwrap();
    assert!(recipe_now.enabled);
    assert_eq!(recipe_now.approved_revision_id, Some(second.id));
    let published = store.published_items("production").await.unwrap();
    assert_eq!(published[0].revision_id, second.id);
    assert_eq!(published[0].data, json!({"id": "x", "v": 2}));

    let disabled = store
        .set_enabled(recipe.id, false, people.approver, at(10))
        .await
        .unwrap();
    assert!(!disabled.enabled);
    assert!(
        store
            .published_items("production")
            .await
            .unwrap()
            .is_empty()
    );
    let states = store.enabled_states(recipe.id).await.unwrap();
    assert_eq!(states.len(), 3);
    assert_eq!(
        (
            states[0].revision_id,
            states[0].enabled,
            states[0].carryover_from
        ),
        (second.id, false, None)
    );
    assert_eq!(not_found(store.enabled_states(9999).await), "recipe");
}

async fn rollbacks_and_their_rollouts_are_never_enabled_together(db: TestDb) {
    let store = db.open().await;
    let people = people(&store).await;
    store
        .create_environment("staging", false, Actor::System, at(0))
        .await
        .unwrap();
    let rollout_a = approved_recipe(&store, &people, "production", rollout("a")).await;
    let rollback_a = approved_recipe(&store, &people, "production", rollback("a")).await;
    let rollback_b = approved_recipe(&store, &people, "production", rollback("b")).await;
    let staging_rollback_a = approved_recipe(&store, &people, "staging", rollback("a")).await;

    store
        .set_enabled(rollout_a.id, true, people.approver, at(20))
        .await
        .unwrap();
    assert_eq!(
        conflict(
            store
                .set_enabled(rollback_a.id, true, people.approver, at(21))
                .await
        ),
        Conflict::RolloutConflict
    );
    // Other slugs and other environments do not conflict.
    store
        .set_enabled(rollback_b.id, true, people.approver, at(21))
        .await
        .unwrap();
    store
        .set_enabled(staging_rollback_a.id, true, people.approver, at(21))
        .await
        .unwrap();

    store
        .set_enabled(rollout_a.id, false, people.approver, at(22))
        .await
        .unwrap();
    store
        .set_enabled(rollback_a.id, true, people.approver, at(23))
        .await
        .unwrap();
    assert_eq!(
        conflict(
            store
                .set_enabled(rollout_a.id, true, people.approver, at(24))
                .await
        ),
        Conflict::RolloutConflict
    );

    // Approving a new revision of an enabled rollout that now names a rolled-back slug
    // would enable both: refused, and nothing changes.
    let rollout_c = approved_recipe(&store, &people, "production", rollout("c")).await;
    store
        .set_enabled(rollout_c.id, true, people.approver, at(25))
        .await
        .unwrap();
    let (_, revision, _) = store
        .update_recipe(rollout_c.id, &rollout("b"), "", people.author, at(26))
        .await
        .unwrap();
    let request = store
        .request_approval(revision.id, people.author, at(27))
        .await
        .unwrap();
    assert_eq!(
        conflict(store.approve(request.id, "", people.approver, at(28)).await),
        Conflict::RolloutConflict
    );
    assert_eq!(
        store.approval_request(request.id).await.unwrap().state,
        ApprovalState::Pending
    );
    assert_eq!(
        store
            .recipe(rollout_c.id)
            .await
            .unwrap()
            .approved_revision_id,
        rollout_c.approved_revision_id
    );
}

async fn published_items_are_approved_and_enabled_only(db: TestDb) {
    let store = db.open().await;
    let people = people(&store).await;
    store
        .create_environment("staging", false, Actor::System, at(0))
        .await
        .unwrap();
    let enabled_one = approved_recipe(&store, &people, "production", json!({"n": 1})).await;
    let _approved_only = approved_recipe(&store, &people, "production", json!({"n": 2})).await;
    let (_draft, _) = store
        .create_recipe(
            Kind::Normandy,
            "production",
            &json!({"n": 3}),
            "",
            people.author,
            at(13),
        )
        .await
        .unwrap();
    let enabled_two = approved_recipe(&store, &people, "production", json!({"n": 4})).await;
    let elsewhere = approved_recipe(&store, &people, "staging", json!({"n": 5})).await;
    for recipe in [&enabled_two, &enabled_one, &elsewhere] {
        store
            .set_enabled(recipe.id, true, people.approver, at(20))
            .await
            .unwrap();
    }
    let published = store.published_items("production").await.unwrap();
    let summary: Vec<(i64, Option<i64>, Kind, Value)> = published
        .into_iter()
        .map(|item| (item.recipe_id, Some(item.revision_id), item.kind, item.data))
        .collect();
    assert_eq!(
        summary,
        [
            (
                enabled_one.id,
                enabled_one.approved_revision_id,
                Kind::Normandy,
                json!({"n": 1})
            ),
            (
                enabled_two.id,
                enabled_two.approved_revision_id,
                Kind::Normandy,
                json!({"n": 4})
            ),
        ]
    );
    let staging = store.published_items("staging").await.unwrap();
    assert_eq!(staging.len(), 1);
    assert_eq!(staging[0].recipe_id, elsewhere.id);
    assert_eq!(
        not_found(store.published_items("nowhere").await),
        "environment"
    );
}

async fn publication_serials(db: TestDb) {
    let store = db.open().await;
    store
        .create_environment("staging", false, Actor::System, at(0))
        .await
        .unwrap();
    // Sub-microsecond digits are not stored; the first answer already says so.
    let first_time = at(1)
        .checked_add(jiff::SignedDuration::from_nanos(1_500))
        .unwrap();
    let first = store
        .publication("production", "h1", first_time)
        .await
        .unwrap();
    assert_eq!(first.serial, 1);
    assert_eq!(
        first.published_at,
        at(1)
            .checked_add(jiff::SignedDuration::from_micros(1))
            .unwrap()
    );
    assert_eq!(first.content_hash, "h1");
    let again = store.publication("production", "h1", at(2)).await.unwrap();
    assert_eq!(again, first, "same content, same serial and time");

    let second = store.publication("production", "h2", at(3)).await.unwrap();
    assert_eq!((second.serial, second.published_at), (2, at(3)));
    let third = store.publication("production", "h1", at(4)).await.unwrap();
    assert_eq!(
        (third.serial, third.published_at),
        (3, at(4)),
        "only the last publication counts"
    );
    let staging = store.publication("staging", "h1", at(5)).await.unwrap();
    assert_eq!(staging.serial, 1, "serials are per environment");
    assert_eq!(
        not_found(store.publication("nowhere", "h1", at(6)).await),
        "environment"
    );
}

async fn signing_keys(db: TestDb) {
    let store = db.open().await;
    let key = |id: &str| NewSigningKey {
        key_id: id.to_owned(),
        private_key_pem: format!("PRIVATE {id}"),
        public_key_pem: format!("PUBLIC {id}"),
    };
    let spare = store
        .add_signing_key(&key("k0"), false, Actor::System, at(1))
        .await
        .unwrap();
    assert!(!spare.active);
    assert_eq!(spare.private_key_pem, "PRIVATE k0");
    let one = store
        .add_signing_key(&key("k1"), true, Actor::System, at(2))
        .await
        .unwrap();
    assert!(one.active);
    assert_eq!((one.created_at, one.retired_at), (at(2), None));
    let two = store
        .add_signing_key(&key("k2"), true, Actor::System, at(3))
        .await
        .unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|key| (key.key_id.as_str(), key.active, key.retired_at))
            .collect::<Vec<_>>(),
        [
            ("k0", false, None),
            ("k1", false, Some(at(3))),
            ("k2", true, None)
        ]
    );
    assert_eq!(
        conflict(
            store
                .add_signing_key(&key("k1"), true, Actor::System, at(4))
                .await
        ),
        Conflict::SigningKeyExists
    );

    let back = store
        .activate_signing_key("k1", Actor::System, at(5))
        .await
        .unwrap();
    assert!(back.active);
    assert_eq!(back.retired_at, None);
    let unchanged = store
        .activate_signing_key("k1", Actor::System, at(6))
        .await
        .unwrap();
    assert_eq!(unchanged, back);
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.iter().filter(|key| key.active).count(), 1);
    assert_eq!(keys[2].retired_at, Some(at(5)));
    assert_eq!(keys[2].id, two.id);
    assert_eq!(
        not_found(store.activate_signing_key("k9", Actor::System, at(7)).await),
        "signing key"
    );

    // The private key stays out of logs and API answers.
    assert!(!format!("{back:?}").contains("PRIVATE"));
    assert!(!format!("{:?}", key("k3")).contains("PRIVATE"));
    assert!(!serde_json::to_string(&back).unwrap().contains("PRIVATE"));
}

async fn audit_log(db: TestDb) {
    let store = db.open().await;
    let people = people(&store).await;
    let recipe = approved_recipe(&store, &people, "production", json!({"n": 1})).await;
    store
        .set_enabled(recipe.id, true, people.approver, at(20))
        .await
        .unwrap();

    let events = store
        .audit_events(&AuditFilter {
            object_type: Some("recipe".to_owned()),
            object_id: Some(recipe.id),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let summary: Vec<(&str, Option<&str>, Timestamp)> = events
        .iter()
        .map(|event| (event.action.as_str(), event.actor.as_deref(), event.at))
        .collect();
    assert_eq!(
        summary,
        [
            ("recipe.enable", Some("approver"), at(20)),
            ("approval.approve", Some("approver"), at(12)),
            ("approval.request", Some("author"), at(11)),
            ("recipe.create", Some("author"), at(10)),
        ]
    );
    assert_eq!(
        events[1].details["revision_id"],
        json!(recipe.latest_revision_id)
    );
    assert_eq!(events[1].details["comment"], json!("ok"));

    let by_system = store
        .audit_events(&AuditFilter {
            action: Some("user.create".to_owned()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_system.len(), 3);
    assert!(
        by_system
            .iter()
            .all(|event| event.actor_id.is_none() && event.actor.is_none())
    );

    let by_author = store
        .audit_events(&AuditFilter {
            actor_id: people.author.user_id(),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_author.len(), 2);

    let window = store
        .audit_events(&AuditFilter {
            since: Some(at(11)),
            until: Some(at(20)),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = window.iter().map(|event| event.action.as_str()).collect();
    assert_eq!(actions, ["approval.approve", "approval.request"]);

    let newest = store
        .audit_events(&AuditFilter {
            limit: Some(1),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(newest[0].action, "recipe.enable");
}

fn event(seq: u64, timestamp: &str, method: &str, slug: &str, branch: Option<&str>) -> IngestEvent {
    IngestEvent {
        seq,
        timestamp: timestamp.parse().unwrap(),
        method: method.to_owned(),
        object: "preference_study".to_owned(),
        value: slug.to_owned(),
        extra: branch
            .map(|branch| BTreeMap::from([("branch".to_owned(), branch.to_owned())]))
            .unwrap_or_default(),
    }
}

async fn telemetry_ingest_and_counts(db: TestDb) {
    let store = db.open().await;
    let batch = [
        event(1, "2026-03-01T23:59:59Z", "enroll", "s", Some("control")),
        event(2, "2026-03-02T00:00:00Z", "enroll", "s", Some("control")),
        event(
            3,
            "2026-03-01T23:00:00-05:00",
            "enroll",
            "s",
            Some("treatment"),
        ),
        // The same sequence number again within the batch: the first event counts.
        event(
            3,
            "2026-03-01T23:00:00-05:00",
            "enroll",
            "s",
            Some("control"),
        ),
        event(4, "2026-03-02T10:00:00Z", "unenroll", "s", None),
        event(
            u64::MAX,
            "2026-03-02T10:00:00Z",
            "enroll",
            "other",
            Some("b"),
        ),
    ];
    let outcome = store.ingest("client-1", &batch, at(0)).await.unwrap();
    assert_eq!((outcome.accepted, outcome.duplicates), (5, 1));
    let outcome = store.ingest("client-1", &batch[..3], at(1)).await.unwrap();
    assert_eq!((outcome.accepted, outcome.duplicates), (0, 3));
    let outcome = store.ingest("client-2", &batch[..1], at(1)).await.unwrap();
    assert_eq!((outcome.accepted, outcome.duplicates), (1, 0));
    let outcome = store.ingest("client-2", &[], at(1)).await.unwrap();
    assert_eq!((outcome.accepted, outcome.duplicates), (0, 0));

    let counts = store
        .enrollment_counts(&EnrollmentFilter::default())
        .await
        .unwrap();
    let summary: Vec<(String, &str, &str, &str, i64)> = counts
        .iter()
        .map(|count| {
            (
                count.day.to_string(),
                count.slug.as_str(),
                count.branch.as_str(),
                count.method.as_str(),
                count.count,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("2026-03-01".to_owned(), "s", "control", "enroll", 2),
            ("2026-03-02".to_owned(), "other", "b", "enroll", 1),
            ("2026-03-02".to_owned(), "s", "", "unenroll", 1),
            ("2026-03-02".to_owned(), "s", "control", "enroll", 1),
            ("2026-03-02".to_owned(), "s", "treatment", "enroll", 1),
        ]
    );
    assert!(
        counts
            .iter()
            .all(|count| count.object == "preference_study")
    );

    let filtered = |filter: EnrollmentFilter| {
        let store = store.clone();
        async move {
            store
                .enrollment_counts(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|count| count.count)
                .collect::<Vec<i64>>()
        }
    };
    assert_eq!(
        filtered(EnrollmentFilter {
            slug: Some("s".to_owned()),
            method: Some("enroll".to_owned()),
            from: Some(jiff::civil::date(2026, 3, 2)),
            ..EnrollmentFilter::default()
        })
        .await,
        [1, 1]
    );
    assert_eq!(
        filtered(EnrollmentFilter {
            to: Some(jiff::civil::date(2026, 3, 1)),
            ..EnrollmentFilter::default()
        })
        .await,
        [2]
    );
    assert_eq!(
        filtered(EnrollmentFilter {
            branch: Some(String::new()),
            ..EnrollmentFilter::default()
        })
        .await,
        [1]
    );
    assert_eq!(
        filtered(EnrollmentFilter {
            object: Some("preference_rollout".to_owned()),
            ..EnrollmentFilter::default()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        filtered(EnrollmentFilter {
            limit: Some(2),
            ..EnrollmentFilter::default()
        })
        .await,
        [2, 1]
    );
}

async fn concurrent_ingest_of_one_batch_counts_once(db: TestDb) {
    const TASKS: usize = 16;
    const EVENTS: u64 = 50;
    let stores = [db.open().await, db.open().await];
    let batch: Vec<IngestEvent> = (0..EVENTS)
        .map(|seq| {
            let branch = if seq % 2 == 0 { "a" } else { "b" };
            event(seq, "2026-03-02T12:00:00Z", "enroll", "s", Some(branch))
        })
        .collect();
    let batch = Arc::new(batch);
    let mut tasks = Vec::new();
    for task_idx in 0..TASKS {
        let store = stores[task_idx % 2].clone();
        let batch = Arc::clone(&batch);
        tasks.push(tokio::spawn(async move {
            store.ingest("client", &batch, at(0)).await.unwrap()
        }));
    }
    let (mut accepted, mut duplicates) = (0, 0);
    for task in tasks {
        let outcome = task.await.unwrap();
        accepted += outcome.accepted;
        duplicates += outcome.duplicates;
    }
    assert_eq!(accepted, EVENTS);
    assert_eq!(duplicates, EVENTS * (TASKS as u64 - 1));
    let counts = stores[0]
        .enrollment_counts(&EnrollmentFilter::default())
        .await
        .unwrap();
    let per_branch: Vec<(&str, i64)> = counts
        .iter()
        .map(|count| (count.branch.as_str(), count.count))
        .collect();
    assert_eq!(per_branch, [("a", 25), ("b", 25)]);
}

/// The hash the tests give `publish`: the published recipe ids.
fn ids_hash(items: &[PublishedItem], _keys: &[SigningKeyRecord]) -> String {
    let ids: Vec<String> = items
        .iter()
        .map(|item| item.recipe_id.to_string())
        .collect();
    ids.join(",")
}

async fn publish_reads_content_and_serial_together(db: TestDb) {
    let stores = [db.open().await, db.open().await];
    let people = people(&stores[0]).await;
    let first = stores[0]
        .publish("production", at(1), &ids_hash)
        .await
        .unwrap();
    assert!(first.items.is_empty());
    assert_eq!(first.publication.serial, 1);
    assert_eq!(first.publication.content_hash, "");
    let again = stores[1]
        .publish("production", at(2), &ids_hash)
        .await
        .unwrap();
    assert_eq!(
        again.publication, first.publication,
        "same content, same serial"
    );

    let mut recipes = Vec::new();
    for n in 0..6 {
        recipes.push(approved_recipe(&stores[0], &people, "production", json!({"n": n})).await);
    }
    // One handle enables the recipes one by one while the other publishes over and over:
    // a later serial never describes fewer recipes than an earlier one.
    let writer = {
        let store = stores[0].clone();
        let approver = people.approver;
        let ids: Vec<i64> = recipes.iter().map(|recipe| recipe.id).collect();
        tokio::spawn(async move {
            for id in ids {
                store.set_enabled(id, true, approver, at(10)).await.unwrap();
            }
        })
    };
    let publisher = {
        let store = stores[1].clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for step in 0..12 {
                let state = store
                    .publish("production", at(20 + step), &ids_hash)
                    .await
                    .unwrap();
                assert_eq!(state.publication.content_hash, ids_hash(&state.items, &[]));
                seen.push((state.publication.serial, state.items.len()));
            }
            seen
        })
    };
    writer.await.unwrap();
    let mut seen = publisher.await.unwrap();
    let last = stores[1]
        .publish("production", at(40), &ids_hash)
        .await
        .unwrap();
    assert_eq!(last.items.len(), 6);
    seen.push((last.publication.serial, last.items.len()));
    for pair in seen.windows(2) {
        let ((serial_a, count_a), (serial_b, count_b)) = (pair[0], pair[1]);
        assert!(serial_b >= serial_a, "serials never go back: {seen:?}");
        assert!(
            count_b >= count_a,
            "a later publication is never older: {seen:?}"
        );
        assert_eq!(serial_a == serial_b, count_a == count_b, "{seen:?}");
    }
    assert_eq!(
        not_found(stores[0].publish("nowhere", at(50), &ids_hash).await),
        "environment"
    );
}

async fn concurrent_publication_from_two_handles(db: TestDb) {
    const TASKS: i64 = 8;
    let stores = [db.open().await, db.open().await];

    // Everyone publishes the same content at different times: one serial, one time.
    let mut tasks = Vec::new();
    for task_idx in 0..TASKS {
        let store = stores[(task_idx % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            store
                .publication("production", "same", at(task_idx))
                .await
                .unwrap()
        }));
    }
    let mut publications = Vec::new();
    for task in tasks {
        publications.push(task.await.unwrap());
    }
    assert!(
        publications
            .iter()
            .all(|publication| publication.serial == 1)
    );
    let first_time = publications[0].published_at;
    assert!(
        publications
            .iter()
            .all(|publication| publication.published_at == first_time)
    );

    // Different content at once: every change gets its own serial, none lost or repeated.
    let mut tasks = Vec::new();
    for task_idx in 0..TASKS {
        let store = stores[(task_idx % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            store
                .publication("production", &format!("content-{task_idx}"), at(100))
                .await
                .unwrap()
                .serial
        }));
    }
    let mut serials = Vec::new();
    for task in tasks {
        serials.push(task.await.unwrap());
    }
    serials.sort();
    assert_eq!(serials, (2..=TASKS + 1).collect::<Vec<i64>>());
}

async fn concurrent_approval_from_two_handles(db: TestDb) {
    let stores = [db.open().await, db.open().await];
    let people = people(&stores[0]).await;
    let (_, revision) = stores[0]
        .create_recipe(
            Kind::Normandy,
            "production",
            &json!({"n": 1}),
            "",
            people.author,
            at(1),
        )
        .await
        .unwrap();
    let request = stores[0]
        .request_approval(revision.id, people.author, at(2))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (store, actor) in [
        (stores[0].clone(), people.approver),
        (stores[1].clone(), people.editor),
    ] {
        tasks.push(tokio::spawn(async move {
            store.approve(request.id, "", actor, at(3)).await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let succeeded = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(succeeded, 1);
    let failed = outcomes.into_iter().find(Result::is_err).unwrap();
    assert_eq!(conflict(failed), Conflict::NotPending);
    let approvals = stores[1]
        .audit_events(&AuditFilter {
            action: Some("approval.approve".to_owned()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(approvals.len(), 1);
}

async fn change_notices(db: TestDb) {
    let listening = db.open().await;
    let Some(mut subscription) = listening.subscribe().await.unwrap() else {
        assert!(!db.is_postgres(), "PostgreSQL must offer a subscription");
        return;
    };
    assert!(
        db.is_postgres(),
        "SQLite serves one process: no subscription"
    );

    // The channel is shared by every schema of the database, so other tests' notices may
    // arrive too: wait for this test's environment, whose name is unique.
    let environment = format!("notices_{}", db.schema.as_deref().unwrap_or_default());
    async fn next_for(subscription: &mut flightdeck_store::Subscription, environment: &str) {
        loop {
            match subscription.recv().await.unwrap() {
                Change::Environment(name) if name == environment => return,
                Change::Environment(_) => (),
                Change::Missed => panic!("the connection was lost"),
            }
        }
    }

    let writing = db.open().await;
    let people = people(&writing).await;
    writing
        .create_environment(&environment, false, Actor::System, at(0))
        .await
        .unwrap();
    let recipe = approved_recipe(&writing, &people, &environment, json!({"n": 1})).await;
    next_for(&mut subscription, &environment).await;
    writing
        .set_enabled(recipe.id, true, people.approver, at(20))
        .await
        .unwrap();
    next_for(&mut subscription, &environment).await;
    writing
        .add_signing_key(
            &NewSigningKey {
                key_id: "k".to_owned(),
                private_key_pem: String::new(),
                public_key_pem: String::new(),
            },
            true,
            Actor::System,
            at(21),
        )
        .await
        .unwrap();
    next_for(&mut subscription, &environment).await;
}

// ---------------------------------------------------------------------------------------------
// Backend-independent

#[tokio::test]
async fn unusable_urls_are_refused_without_echoing_them() {
    for url in ["mysql://user:secret@host/db", "", "secret"] {
        match Store::open(url).await {
            Err(StoreError::InvalidUrl { reason }) => assert!(!reason.contains("secret")),
            other => panic!("expected InvalidUrl for {url:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn in_memory_sqlite_works_for_one_process() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let user = store
        .create_user("ada", &[Role::Viewer], Actor::System, at(0))
        .await
        .unwrap();
    assert_eq!(store.user(user.id).await.unwrap(), user);
    assert!(store.subscribe().await.unwrap().is_none());
}

#[test]
fn conflict_codes_are_distinct_snake_case() {
    let codes: std::collections::BTreeSet<&str> = Conflict::ALL
        .iter()
        .map(|conflict| conflict.code())
        .collect();
    assert_eq!(codes.len(), Conflict::ALL.len());
    for code in codes {
        assert!(
            code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{code}"
        );
    }
    assert_eq!(Conflict::SelfApproval.code(), "self_approval");
    assert!(Conflict::NotApproved.to_string().contains("not_approved"));
}

#[tokio::test]
async fn sqlite_file_is_in_wal_mode() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flightdeck.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.ping().await.unwrap();
    // The journal mode is a property of the file, so a plain second connection sees it.
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    connection.close().await.unwrap();
    store.shutdown().await;
}
