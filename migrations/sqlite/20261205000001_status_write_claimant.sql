-- Who began each overdue write intent: `serve` names its instance (`serve:<pid>:<random>`),
-- so the next `serve`, holding the instance lock, takes over at once what a killed
-- predecessor left pending. Empty = anonymous (freed by the claim window only).
ALTER TABLE status_writes ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
