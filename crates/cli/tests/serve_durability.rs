//! Durability: `flightdeck serve` is killed with SIGKILL while several writers are creating,
//! approving, enabling and editing recipes and uploading telemetry; after a restart on the
//! same database, every write the server acknowledged (answered with a 2xx) is there.
//!
//! A write whose answer never arrived (the connection broke) is not acknowledged and may or
//! may not be there; the test only asks that the acknowledged ones are (acknowledged ⊆
//! stored). Once on SQLite in a data directory, and once on PostgreSQL in a fresh schema
//! when `FLIGHTDECK_TEST_POSTGRES_URL` is set.

mod common;
#[path = "common/server.rs"]
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::TempDir;
use reqwest::Method;
use serde_json::{Value, json};
use server::{PgSchema, Server, http, try_call, user_with_token};

/// Threads writing at once.
const WRITERS: usize = 4;
/// How many acknowledged writes to wait for before killing the server.
const ACKS_BEFORE_KILL: usize = 200;
/// Telemetry events per upload.
const EVENTS_PER_BATCH: u64 = 10;
/// Telemetry uploads per recipe.
const UPLOADS_PER_ROUND: u64 = 3;
/// The longest the test waits for the next acknowledgement (a loaded machine is slow, a
/// stuck server is stuck).
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// A write the server acknowledged, with what it acknowledged.
#[derive(Debug, Clone)]
enum Ack {
    /// `POST /api/v3/recipe/`: the recipe and its first revision.
    Created {
        recipe: i64,
        revision: i64,
        name: String,
    },
    /// `POST /api/v3/recipe_revision/{revision}/request_approval/`.
    Requested { recipe: i64, request: i64 },
    /// `POST /api/v3/approval_request/{request}/approve/`.
    Approved { recipe: i64 },
    /// `POST /api/v3/recipe/{recipe}/enable/`.
    Enabled { recipe: i64 },
    /// `PUT /api/v3/recipe/{recipe}/`: a second revision, not approved.
    Updated { recipe: i64, revision: i64 },
    /// `POST /api/v1/telemetry/`: `events` new events counted under `slug`.
    Ingested { slug: String, events: u64 },
}

/// What the acknowledgements say one recipe must look like after the restart.
#[derive(Debug, Default)]
struct Expected {
    created_revision: i64,
    name: String,
    request: Option<i64>,
    approved: bool,
    enabled: bool,
    updated_revision: Option<i64>,
}

/// The tokens the writers use.
struct Tokens {
    editor: String,
    approver: String,
}

/// One writer: sends writes until the server stops answering.
struct Writer<'a> {
    index: usize,
    base: String,
    tokens: &'a Tokens,
    killed: &'a AtomicBool,
    acks: mpsc::Sender<Ack>,
    client: reqwest::blocking::Client,
}

impl Writer<'_> {
    /// Sends one write; `None` when the server did not answer (after the kill: the writer
    /// stops). An answer must be `expected`: the server has no reason to refuse any of
    /// these writes.
    fn send(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> Option<Value> {
        match try_call(&self.client, &self.base, token, method, path, body) {
            Ok((status, value)) => {
                assert_eq!(status, expected, "{path}: {value}");
                Some(value)
            }
            Err(error) => {
                assert!(
                    self.killed.load(Ordering::SeqCst),
                    "writer {} lost the server before it was killed: {path}: {error}",
                    self.index
                );
                None
            }
        }
    }

    fn ack(&self, ack: Ack) {
        // The receiver outlives every writer.
        let _ = self.acks.send(ack);
    }

    /// Writes until the server is gone.
    fn run(&self) {
        for round in 0.. {
            if self.round(round).is_none() {
                return;
            }
        }
    }

    /// Uploads telemetry: `EVENTS_PER_BATCH` new events under a slug of their own, so that
    /// the slug's count must be exactly this batch. Telemetry is public; the token is
    /// ignored.
    fn upload(&self, round: u64, part: u64) -> Option<()> {
        let w = self.index;
        let slug = format!("durable-w{w}-r{round}-u{part}");
        let first_seq = (round * UPLOADS_PER_ROUND + part) * EVENTS_PER_BATCH;
        let events: Vec<Value> = (first_seq..first_seq + EVENTS_PER_BATCH)
            .map(|seq| {
                json!({"seq": seq,
                       "timestamp": "2026-03-01T12:00:00Z",
                       "method": "enroll", "object": "preference_rollout",
                       "value": slug, "extra": {"branch": ""}})
            })
            .collect();
        let answer = self.send(
            "",
            Method::POST,
            "/api/v1/telemetry/",
            Some(&json!({"clientId": format!("durable-writer-{w}"), "events": events})),
            200,
        )?;
        assert_eq!(answer["accepted"], EVENTS_PER_BATCH, "{answer}");
        assert_eq!(answer["duplicates"], 0, "{answer}");
        self.ack(Ack::Ingested {
            slug,
            events: EVENTS_PER_BATCH,
        });
        Some(())
    }

    /// One recipe's life (created, approval asked, approved, enabled, edited) with
    /// telemetry uploads in between, so that the kill may catch any kind of write.
    fn round(&self, round: u64) -> Option<()> {
        let w = self.index;
        let slug = format!("durable-w{w}-r{round}");
        let name = format!("Durable rollout {w}/{round}");
        let document = |value: i64| {
            json!({
                "name": name,
                "action": "preference-rollout",
                "arguments": {"slug": slug,
                              "preferences": [{"preferenceName": format!("durable.w{w}.r{round}"),
                                               "value": value}]},
                "extra_filter_expression": "normandy.channel == 'release'",
                "comment": format!("value {value}")
            })
        };
        let tokens = self.tokens;

        let created = self.send(
            &tokens.editor,
            Method::POST,
            "/api/v3/recipe/",
            Some(&document(1)),
            201,
        )?;
        let recipe = created["id"].as_i64().expect("recipe id");
        let revision = created["latest_revision"]["id"]
            .as_i64()
            .expect("revision id");
        self.ack(Ack::Created {
            recipe,
            revision,
            name: name.clone(),
        });
        self.upload(round, 0)?;

        let requested = self.send(
            &tokens.editor,
            Method::POST,
            &format!("/api/v3/recipe_revision/{revision}/request_approval/"),
            None,
            201,
        )?;
        let request = requested["id"].as_i64().expect("request id");
        assert_eq!(requested["state"], "pending", "{requested}");
        self.ack(Ack::Requested { recipe, request });

        let approved = self.send(
            &tokens.approver,
            Method::POST,
            &format!("/api/v3/approval_request/{request}/approve/"),
            Some(&json!({"comment": "fine"})),
            200,
        )?;
        assert_eq!(approved["state"], "approved", "{approved}");
        self.ack(Ack::Approved { recipe });
        self.upload(round, 1)?;

        let enabled = self.send(
            &tokens.approver,
            Method::POST,
            &format!("/api/v3/recipe/{recipe}/enable/"),
            None,
            200,
        )?;
        assert_eq!(enabled["enabled"], true, "{enabled}");
        self.ack(Ack::Enabled { recipe });

        let updated = self.send(
            &tokens.editor,
            Method::PUT,
            &format!("/api/v3/recipe/{recipe}/"),
            Some(&document(2)),
            200,
        )?;
        assert_eq!(updated["revision_created"], true, "{updated}");
        let new_revision = updated["latest_revision"]["id"]
            .as_i64()
            .expect("revision id");
        self.ack(Ack::Updated {
            recipe,
            revision: new_revision,
        });
        self.upload(round, 2)
    }
}

/// Starts a server with `start`, writes under load, kills it, restarts it with `start`, and
/// checks every acknowledged write.
fn acknowledged_writes_survive_sigkill(start: impl Fn() -> Server) {
    let began = Instant::now();
    let server = start();
    let admin = server.first_token.clone().expect("a first-start token");
    let tokens = Tokens {
        editor: user_with_token(&server, &admin, "writer", &["editor"]),
        approver: user_with_token(&server, &admin, "checker", &["approver"]),
    };
    let base = server.base.clone();
    let killed = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<Ack>();

    let acks = std::thread::scope(|scope| {
        for index in 0..WRITERS {
            let writer = Writer {
                index,
                base: base.clone(),
                tokens: &tokens,
                killed: &killed,
                acks: sender.clone(),
                client: http(),
            };
            scope.spawn(move || writer.run());
        }
        drop(sender);
        let mut acks = Vec::new();
        while acks.len() < ACKS_BEFORE_KILL {
            match receiver.recv_timeout(ACK_TIMEOUT) {
                Ok(ack) => acks.push(ack),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "no write acknowledged within {ACK_TIMEOUT:?} ({} so far)",
                    acks.len()
                ),
                // Every writer stopped (and failed): the scope reports why.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Writers are still writing: kill the server under them.
        killed.store(true, Ordering::SeqCst);
        server.kill();
        acks
    });
    // The writers have stopped; the acknowledgements that arrived meanwhile count too.
    let mut acks = acks;
    acks.extend(receiver.try_iter());
    assert!(acks.len() >= ACKS_BEFORE_KILL, "{} acks", acks.len());
    let killed_after = began.elapsed();

    let server = start();
    assert_eq!(
        server.first_token, None,
        "no second admin after the restart"
    );
    check(&server, &admin, &acks);
    eprintln!(
        "{} acknowledged writes; killed after {killed_after:?}; checked after {:?}",
        acks.len(),
        began.elapsed()
    );
}

/// Checks that the restarted `server` holds every acknowledged write.
fn check(server: &Server, admin: &str, acks: &[Ack]) {
    let client = http();
    let get = |path: &str| -> (u16, Value) {
        try_call(&client, &server.base, admin, Method::GET, path, None)
            .unwrap_or_else(|error| panic!("GET {path}: {error}"))
    };
    let mut recipes: BTreeMap<i64, Expected> = BTreeMap::new();
    let mut batches: BTreeMap<String, u64> = BTreeMap::new();
    for ack in acks {
        match ack {
            Ack::Created {
                recipe,
                revision,
                name,
            } => {
                let expected = recipes.entry(*recipe).or_default();
                expected.created_revision = *revision;
                expected.name = name.clone();
            }
            Ack::Requested { recipe, request } => {
                recipes.entry(*recipe).or_default().request = Some(*request);
            }
            Ack::Approved { recipe } => recipes.entry(*recipe).or_default().approved = true,
            Ack::Enabled { recipe } => recipes.entry(*recipe).or_default().enabled = true,
            Ack::Updated { recipe, revision } => {
                recipes.entry(*recipe).or_default().updated_revision = Some(*revision);
            }
            Ack::Ingested { slug, events } => {
                batches.insert(slug.clone(), *events);
            }
        }
    }

    let mut must_publish = BTreeSet::new();
    for (id, expected) in &recipes {
        let (status, recipe) = get(&format!("/api/v3/recipe/{id}/"));
        assert_eq!(status, 200, "recipe {id}: {recipe}");
        let latest = &recipe["latest_revision"];
        match expected.updated_revision {
            Some(revision) => {
                assert_eq!(latest["id"], revision, "recipe {id}: {recipe}");
                assert_eq!(
                    latest["parent_id"], expected.created_revision,
                    "recipe {id}: {recipe}"
                );
                assert_eq!(
                    latest["data"]["arguments"]["preferences"][0]["value"], 2,
                    "recipe {id}: {recipe}"
                );
            }
            None => {
                let (status, revision) = get(&format!(
                    "/api/v3/recipe_revision/{}/",
                    expected.created_revision
                ));
                assert_eq!(status, 200, "recipe {id}: {revision}");
                assert_eq!(revision["recipe"]["id"], *id, "{revision}");
            }
        }
        assert_eq!(
            recipe["latest_revision"]["data"]["name"], expected.name,
            "recipe {id}: {recipe}"
        );
        if let Some(request) = expected.request {
            let (status, body) = get(&format!("/api/v3/approval_request/{request}/"));
            assert_eq!(status, 200, "request {request}: {body}");
            assert_eq!(body["recipe_id"], *id, "{body}");
            assert_eq!(body["revision_id"], expected.created_revision, "{body}");
            if expected.approved {
                assert_eq!(body["state"], "approved", "{body}");
            } else {
                assert!(
                    body["state"] == "pending" || body["state"] == "approved",
                    "{body}"
                );
            }
        }
        if expected.approved {
            assert_eq!(
                recipe["approved_revision"]["id"], expected.created_revision,
                "recipe {id}: {recipe}"
            );
        }
        if expected.enabled {
            assert_eq!(recipe["enabled"], true, "recipe {id}: {recipe}");
            must_publish.insert(*id);
        }
    }

    // Every recipe whose enabling was acknowledged is in the signed manifest.
    let manifest: Value = serde_json::from_slice(
        &client
            .get(server.url("/api/v1/manifest/"))
            .send()
            .expect("manifest")
            .bytes()
            .expect("manifest body"),
    )
    .expect("manifest JSON");
    let published: BTreeSet<i64> = manifest["normandy"]
        .as_array()
        .expect("normandy records")
        .iter()
        .filter_map(|record| record["recipe"]["id"].as_i64())
        .collect();
    let missing: Vec<&i64> = must_publish.difference(&published).collect();
    assert!(missing.is_empty(), "enabled but not published: {missing:?}");

    // Every acknowledged upload is counted exactly once.
    let (status, counts) = get("/api/v3/telemetry/enrollment/?limit=100000");
    assert_eq!(status, 200, "{counts}");
    let mut counted: BTreeMap<String, i64> = BTreeMap::new();
    for row in counts.as_array().expect("counts") {
        let slug = row["slug"].as_str().expect("slug").to_owned();
        *counted.entry(slug).or_default() += row["count"].as_i64().expect("count");
    }
    for (slug, events) in &batches {
        let count = counted.get(slug).copied().unwrap_or(0);
        assert_eq!(
            u64::try_from(count).ok(),
            Some(*events),
            "events counted for {slug}"
        );
    }
    assert!(!recipes.is_empty() && !batches.is_empty(), "{acks:?}");
}

#[test]
fn sqlite_keeps_every_acknowledged_write_after_sigkill() {
    let tmp = TempDir::new("serve-durability");
    let data_dir = tmp.path().join("server");
    acknowledged_writes_survive_sigkill(|| Server::start_sqlite(&data_dir));
}

#[test]
fn postgres_keeps_every_acknowledged_write_after_sigkill() {
    let Some(url) = server::postgres_url() else {
        return;
    };
    let schema = PgSchema::create(&url, "durability");
    acknowledged_writes_survive_sigkill(|| Server::start_postgres(&schema.url));
}
