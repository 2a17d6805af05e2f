-- notion-sync store, initial schema.
-- Never edit a migration once it has landed; add a new one.
--
-- Conventions:
--   * queue and bookkeeping times (jobs.*_at, lease_until) are INTEGER unix milliseconds (UTC);
--   * every time users are expected to query (mirror, transitions, event log, tokens) is
--     ISO-8601 UTC TEXT with milliseconds, e.g. '2026-11-23T17:43:00.000Z', so it sorts and
--     compares as text.

-- Job queue. At most one queued and at most one running job per key (enforced by the two
-- partial unique indexes); any number of dead ones. Completed jobs are deleted.
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    key               TEXT    NOT NULL,
    kind              TEXT    NOT NULL,
    payload           TEXT    NOT NULL CHECK (json_valid(payload)),
    state             TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'dead')),
    lane              TEXT    NOT NULL CHECK (lane IN ('interactive', 'bulk')),
    run_at            INTEGER NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error        TEXT,
    lease_token       TEXT,
    lease_until       INTEGER,
    worker            TEXT,
    enqueued_at       INTEGER NOT NULL,
    first_enqueued_at INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK ((state = 'running') = (lease_token IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE UNIQUE INDEX jobs_one_queued_per_key  ON jobs (key) WHERE state = 'queued';
CREATE UNIQUE INDEX jobs_one_running_per_key ON jobs (key) WHERE state = 'running';
CREATE INDEX jobs_due   ON jobs (lane, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_until)      WHERE state = 'running';
CREATE INDEX jobs_dead  ON jobs (id)               WHERE state = 'dead';

-- Webhook event log: deduplicates deliveries by Notion's event id; pruned after the
-- retention period.
CREATE TABLE webhook_events (
    event_id       TEXT    PRIMARY KEY NOT NULL,
    event_type     TEXT    NOT NULL,
    entity_type    TEXT    NOT NULL,
    entity_id      TEXT    NOT NULL,
    attempt_number INTEGER NOT NULL,
    event_time     TEXT,
    received_at    TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhook_events_received_at ON webhook_events (received_at);

-- Verification tokens Notion sent (unsigned) when a subscription was created. Pending until
-- an operator pastes one into Notion's UI and configures it as the webhook secret.
CREATE TABLE verification_tokens (
    token       TEXT PRIMARY KEY NOT NULL,
    received_at TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending'))
) WITHOUT ROWID;

-- Watermarks, scan cursors and other small named state.
CREATE TABLE sync_state (
    name       TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- Monotonic counters the store keeps itself (e.g. leases_expired_total).
CREATE TABLE store_counters (
    name  TEXT    PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- The mirror. Columns up to synced_at are a public contract (users query them directly).
CREATE TABLE pages (
    id               TEXT    PRIMARY KEY NOT NULL,      -- dashed lowercase UUID
    data_source_id   TEXT    NOT NULL,
    title            TEXT    NOT NULL,
    status           TEXT,
    due              TEXT,                              -- Notion's date start, as Notion wrote it
    url              TEXT    NOT NULL,
    created_time     TEXT    NOT NULL,
    last_edited_time TEXT    NOT NULL,
    in_trash         INTEGER NOT NULL DEFAULT 0 CHECK (in_trash IN (0, 1)),
    properties       TEXT    NOT NULL CHECK (json_valid(properties)),
    body_markdown    TEXT,
    body_hash        TEXT,
    synced_at        TEXT    NOT NULL,                  -- our clock, last write of this row
    -- internal columns
    body_fetched_at  TEXT,                              -- Notion's clock, when the body was read
    observed_at      TEXT    NOT NULL                   -- Notion's clock, when properties were read
);
CREATE INDEX pages_data_source ON pages (data_source_id, in_trash);
CREATE INDEX pages_status_due  ON pages (status, due);

-- Every status the daemon wrote.
CREATE TABLE task_transitions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    page_id     TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX task_transitions_page ON task_transitions (page_id, at);

-- Overdue write intents: one PATCH per (page, due date, target status), across retries and
-- restarts.
CREATE TABLE status_writes (
    page_id    TEXT NOT NULL,
    due        TEXT NOT NULL,
    to_status  TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    created_at TEXT NOT NULL,
    done_at    TEXT,
    PRIMARY KEY (page_id, due, to_status)
) WITHOUT ROWID;
