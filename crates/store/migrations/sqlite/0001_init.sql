-- Flightdeck server storage, SQLite dialect. Keep in step with ../postgres/0001_init.sql:
-- the same tables, columns and constraints; only the types are spelled differently.
-- Times are epoch microseconds (UTC); JSON is text as serialised by serde_json; booleans are
-- 0/1. AUTOINCREMENT keeps ids of deleted rows (closed approval requests) from being reused.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    roles TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE environments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    peer_approval INTEGER NOT NULL CHECK (peer_approval IN (0, 1)),
    created_at INTEGER NOT NULL
);
INSERT INTO environments (name, peer_approval, created_at)
VALUES ('production', 1, CAST(unixepoch('subsec') * 1000000 AS INTEGER));

CREATE TABLE recipes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    environment_id INTEGER NOT NULL REFERENCES environments (id),
    latest_revision_id INTEGER REFERENCES revisions (id),
    approved_revision_id INTEGER REFERENCES revisions (id),
    enabled INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX recipes_environment ON recipes (environment_id, kind);

CREATE TABLE revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipe_id INTEGER NOT NULL REFERENCES recipes (id),
    parent_id INTEGER REFERENCES revisions (id),
    data TEXT NOT NULL,
    comment TEXT NOT NULL,
    author_id INTEGER REFERENCES users (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX revisions_recipe ON revisions (recipe_id);

CREATE TABLE approval_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    revision_id INTEGER NOT NULL UNIQUE REFERENCES revisions (id),
    recipe_id INTEGER NOT NULL REFERENCES recipes (id),
    creator_id INTEGER REFERENCES users (id),
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    approver_id INTEGER REFERENCES users (id),
    comment TEXT,
    created_at INTEGER NOT NULL,
    decided_at INTEGER
);
CREATE INDEX approval_requests_recipe ON approval_requests (recipe_id);

CREATE TABLE enabled_states (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipe_id INTEGER NOT NULL REFERENCES recipes (id),
    revision_id INTEGER NOT NULL REFERENCES revisions (id),
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    creator_id INTEGER REFERENCES users (id),
    created_at INTEGER NOT NULL,
    carryover_from INTEGER REFERENCES enabled_states (id)
);
CREATE INDEX enabled_states_recipe ON enabled_states (recipe_id);

CREATE TABLE publications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    environment_id INTEGER NOT NULL REFERENCES environments (id),
    serial INTEGER NOT NULL,
    published_at INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    UNIQUE (environment_id, serial)
);

CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL UNIQUE,
    private_key_pem TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    active INTEGER NOT NULL CHECK (active IN (0, 1)),
    retired_at INTEGER
);
-- At most one key signs at a time.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active;

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    actor_id INTEGER REFERENCES users (id),
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id INTEGER NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_events_object ON audit_events (object_type, object_id);

-- Never deleted, so a plain rowid is enough; (client_id, seq) is the deduplication key.
CREATE TABLE telemetry_events (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    occurred_at INTEGER NOT NULL,
    method TEXT NOT NULL,
    object TEXT NOT NULL,
    value TEXT NOT NULL,
    extra TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (client_id, seq)
);

-- `day` is the UTC date of the event's timestamp, `YYYY-MM-DD`.
CREATE TABLE enrollment_counts (
    day TEXT NOT NULL,
    object TEXT NOT NULL,
    slug TEXT NOT NULL,
    branch TEXT NOT NULL,
    method TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, object, slug, branch, method)
);
