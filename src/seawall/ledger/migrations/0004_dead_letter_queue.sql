-- The dead-letter queue: every run that ended failed, with what a redrive needs.
-- run_id is UNIQUE: a run is enqueued at most once, whichever worker records its failure.

CREATE TABLE dlq (
    entry_id          TEXT PRIMARY KEY,
    run_id            TEXT NOT NULL UNIQUE,
    agent             TEXT NOT NULL,
    error_class       TEXT,
    failure_cause     TEXT,
    error_message     TEXT,
    failed_at         {REAL} NOT NULL,
    attempts          INTEGER NOT NULL,
    status            TEXT NOT NULL,
    claimed_by        TEXT,
    claimed_at        {REAL},
    redriven_at       {REAL},
    redrive_run_id    TEXT,
    result            TEXT,
    previous_entry_id TEXT
);
CREATE INDEX dlq_by_status ON dlq (status, failed_at);
CREATE INDEX dlq_by_agent ON dlq (agent, failed_at);

-- How a replay run was made: 'recorded' (served from the original's journal; never executed
-- live, not even on resume) or 'live'.
ALTER TABLE runs ADD COLUMN replay_mode TEXT;
