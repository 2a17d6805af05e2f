-- Several replicas on one database (PostgreSQL). The same tables exist on SQLite, where the
-- one daemon holds every lease, so both backends run the same code.
--
-- A named role one replica holds at a time (`leader`: the scheduled passes). The holder
-- renews before until_ms; anyone may take a lease whose until_ms has passed. fence grows by
-- one at every change of holder. Times are unix ms of the replicas' clocks.
CREATE TABLE leases (
    name     TEXT COLLATE "C" PRIMARY KEY,
    holder   TEXT COLLATE "C" NOT NULL,
    until_ms BIGINT  NOT NULL,
    since_ms BIGINT  NOT NULL,
    fence    BIGINT  NOT NULL
);
-- One request budget per integration that every replica draws from: the next free
-- request slot and the end of a pause a rate-limited answer set (unix ms of the replicas'
-- clocks, which NTP keeps within milliseconds of each other).
CREATE TABLE rate_budgets (
    name            TEXT COLLATE "C" PRIMARY KEY,
    next_at_ms      BIGINT  NOT NULL,
    paused_until_ms BIGINT  NOT NULL DEFAULT 0
);
-- Replicas alive (each renews seen_ms): health shows them, the split budget counts them.
CREATE TABLE replicas (
    id         TEXT COLLATE "C" PRIMARY KEY,
    started_ms BIGINT  NOT NULL,
    seen_ms    BIGINT  NOT NULL
);
