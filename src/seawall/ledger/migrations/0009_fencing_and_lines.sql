-- Fencing: every takeover of a run raises its epoch; every write an attempt makes is conditional
-- on the epoch it holds, so a process that stalled past its lease cannot write after a takeover.
ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET epoch = 1 WHERE lease_owner IS NOT NULL;
-- Per attempt: the epoch it held; where its journal line starts (an error retry asks again on a
-- new line and serves only the side effects of earlier ones); how many completed steps the
-- journal held when it started (a crash with no progress since counts toward a crash loop);
-- when a fenced owner found out; and why the attempt was, or was not, retried.
ALTER TABLE attempts ADD COLUMN epoch INTEGER;
ALTER TABLE attempts ADD COLUMN base_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN completed_at_start INTEGER;
ALTER TABLE attempts ADD COLUMN fenced_at {REAL};
ALTER TABLE attempts ADD COLUMN decision TEXT;
