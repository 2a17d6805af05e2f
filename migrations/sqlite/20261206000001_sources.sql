-- Several sources (task data sources with their own rules) and integrations (token,
-- webhook subscription, rate budget) in one daemon. A single-source configuration is the
-- source and integration named 'default', so an existing database keeps its meaning.
--
-- Which source a job belongs to: that source's workers claim it (each source drains its
-- own queue, so one source's backlog never starves another's).
ALTER TABLE jobs ADD COLUMN source TEXT NOT NULL DEFAULT 'default';
CREATE INDEX jobs_due_by_source ON jobs (source, lane, run_at, id) WHERE state = 'queued';
-- Which source mirrors each page (part of the mirror's public contract).
ALTER TABLE pages ADD COLUMN source TEXT NOT NULL DEFAULT 'default';
CREATE INDEX pages_source ON pages (source, in_trash);
-- Which integration's webhook endpoint a pending verification token arrived on.
ALTER TABLE verification_tokens ADD COLUMN integration TEXT NOT NULL DEFAULT 'default';
