-- Jobs one read can answer together (a burst of property reads for one data source that
-- a query answers at once). NULL: the job is read on its own. Set by the engine at
-- enqueue, kept through merges (NULL yields to a batch), read by `batch_counts` and
-- `claim_batch`.
ALTER TABLE jobs ADD COLUMN batch TEXT;
CREATE INDEX jobs_queued_batch ON jobs (batch) WHERE state = 'queued' AND batch IS NOT NULL;
