//! Shared helpers of the admin API tests: a router over a real store (a SQLite file in a
//! temporary directory, or a fresh PostgreSQL schema), users of every role with tokens, a
//! clock that ticks one second per reading, and a hook that records its calls.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use flightdeck_server::admin::{self, AdminState, HookFuture, PublishHook, bootstrap};
use flightdeck_store::{Role, Store};
use jiff::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Records every `changed` call.
#[derive(Default)]
pub struct RecordingHook {
    calls: Mutex<Vec<Option<String>>>,
}

impl RecordingHook {
    /// The calls so far, emptied.
    pub fn take(&self) -> Vec<Option<String>> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl PublishHook for RecordingHook {
    fn changed<'a>(&'a self, environment: Option<&'a str>) -> HookFuture<'a> {
        self.calls
            .lock()
            .unwrap()
            .push(environment.map(str::to_owned));
        Box::pin(async {})
    }
}

/// A response: status, headers, and the body as JSON (`Value::Null` when empty, a string
/// when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The fields named by an error body.
    pub fn fields(&self) -> Vec<String> {
        self.body["error"]["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| f["field"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Reply {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        self
    }

    /// `body["id"]` as an integer.
    pub fn id(&self) -> i64 {
        self.body["id"].as_i64().expect("an id")
    }
}

/// The test users' tokens.
pub struct Tokens {
    /// No role at all.
    pub nobody: String,
    pub viewer: String,
    pub editor: String,
    /// A second editor.
    pub editor2: String,
    pub approver: String,
    pub admin: String,
}

pub struct TestApi {
    pub app: Router,
    pub store: Store,
    pub hook: Arc<RecordingHook>,
    pub tokens: Tokens,
    /// Usernames → ids.
    pub users: Vec<(String, i64)>,
    pub clock_start: Timestamp,
    _dir: Option<tempfile::TempDir>,
}

/// The first reading of the test clock.
pub fn start_time() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

impl TestApi {
    /// Over a SQLite file in a temporary directory.
    pub async fn sqlite() -> TestApi {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("flightdeck.db").display());
        TestApi::open(&url, Some(dir)).await
    }

    /// Over the store at `url`.
    pub async fn open(url: &str, dir: Option<tempfile::TempDir>) -> TestApi {
        let store = Store::open(url).await.unwrap();
        let hook = Arc::new(RecordingHook::default());
        let ticks = Arc::new(AtomicI64::new(0));
        let start = start_time();
        let clock: admin::Clock = Arc::new(move || {
            let tick = ticks.fetch_add(1, Ordering::Relaxed);
            Timestamp::from_second(start.as_second() + tick).unwrap()
        });
        let state = AdminState::new(store.clone(), hook.clone()).with_clock(clock);
        let app = admin::router()
            .merge(admin::telemetry_router())
            .with_state(state);
        let mut users = Vec::new();
        let mut secrets = Vec::new();
        for (name, roles) in [
            ("nobody", vec![]),
            ("victor", vec![Role::Viewer]),
            ("edith", vec![Role::Editor, Role::Viewer]),
            ("eddie", vec![Role::Editor, Role::Viewer]),
            ("april", vec![Role::Approver, Role::Viewer]),
            ("adam", vec![Role::Admin]),
        ] {
            let user = bootstrap::create_user(&store, name, &roles, start)
                .await
                .unwrap();
            let secret = bootstrap::create_token(&store, name, "tests", start)
                .await
                .unwrap();
            users.push((name.to_owned(), user.id));
            secrets.push(secret);
        }
        hook.take();
        let mut secrets = secrets.into_iter();
        let mut next = || secrets.next().unwrap();
        TestApi {
            app,
            store,
            hook,
            tokens: Tokens {
                nobody: next(),
                viewer: next(),
                editor: next(),
                editor2: next(),
                approver: next(),
                admin: next(),
            },
            users,
            clock_start: start,
            _dir: dir,
        }
    }

    /// The id of the user `name`.
    pub fn user_id(&self, name: &str) -> i64 {
        self.users.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let body = body.map(|b| b.to_string().into_bytes());
        self.raw(method, path, token, body).await
    }

    /// Sends a request with a raw body.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(bytes) => request
                .header("content-type", "application/json")
                .body(Body::from(bytes))
                .unwrap(),
            None => request.body(Body::empty()).unwrap(),
        };
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub async fn post_empty(&self, path: &str, token: &str) -> Reply {
        self.call("POST", path, Some(token), None).await
    }
}

/// A valid preference rollout.
pub fn rollout(slug: &str) -> Value {
    json!({
        "name": format!("Rollout {slug}"),
        "action": "preference-rollout",
        "arguments": {
            "slug": slug,
            "preferences": [{"preferenceName": "browser.feature.enabled", "value": true}]
        },
        "extra_filter_expression": "normandy.channel == 'release'"
    })
}

/// A valid preference rollback of `slug`.
pub fn rollback(slug: &str) -> Value {
    json!({
        "name": format!("Rollback {slug}"),
        "action": "preference-rollback",
        "arguments": {"rolloutSlug": slug},
        "extra_filter_expression": "true"
    })
}

/// Runs `test` against a fresh PostgreSQL schema when `FLIGHTDECK_TEST_POSTGRES_URL` is set
/// (dropped afterwards, also when the test fails); prints that it is skipped otherwise.
pub async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    flightdeck_store::testing::with_postgres_schema("admin", |url, _schema| test(url)).await;
}
