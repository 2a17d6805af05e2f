-- When the oldest interactive request a job serves arrived (Unix ms; NULL: none). A
-- webhook's request that merges into a queued bulk job for the same page raises the job
-- to the interactive lane; its freshness counts from here, not from the bulk request.
ALTER TABLE jobs ADD COLUMN interactive_since INTEGER;
