-- Several replicas on one database (PostgreSQL). The tables exist on SQLite too, where the
-- one daemon holds every lease, so both backends run the same code.
--
-- A named role one replica holds at a time (`leader`: the scheduled passes). The holder
-- renews before until_ms; anyone may take a lease whose until_ms has passed. fence grows by
-- one at every change of holder. Times are unix ms of the replicas' clocks.
CREATE TABLE leases (
    name     TEXT    PRIMARY KEY NOT NULL,
    holder   TEXT    NOT NULL,
    until_ms INTEGER NOT NULL,
    since_ms INTEGER NOT NULL,
    fence    INTEGER NOT NULL
) WITHOUT ROWID;
-- One request budget per integration that every replica draws from: the next free
-- request slot and the end of a pause a rate-limited answer set (unix ms of the replicas'
-- clocks, which NTP keeps within milliseconds of each other).
CREATE TABLE rate_budgets (
    name            TEXT    PRIMARY KEY NOT NULL,
    next_at_ms      INTEGER NOT NULL,
    paused_until_ms INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Replicas alive (each renews seen_ms): health shows them, the split budget counts them.
CREATE TABLE replicas (
    id         TEXT    PRIMARY KEY NOT NULL,
    started_ms INTEGER NOT NULL,
    seen_ms    INTEGER NOT NULL
) WITHOUT ROWID;
