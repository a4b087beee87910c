-- Staged artifacts and their atomic commit, saga compensations, and hand-offs to a person.

-- A run's phase while it settles: NULL while the agent runs, 'committing' once its output and
-- artifact manifest are recorded and the artifacts are being published, 'compensating' once it
-- failed after side effects and its compensations are running.
ALTER TABLE runs ADD COLUMN phase TEXT;
ALTER TABLE runs ADD COLUMN commit_json TEXT;
CREATE INDEX runs_by_phase ON runs (phase) WHERE phase IS NOT NULL;

CREATE TABLE artifacts (
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    committed_at DOUBLE PRECISION,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE compensations (
    run_id          TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    tool            TEXT NOT NULL,
    idempotency_key TEXT,
    status          TEXT NOT NULL,
    start_time      DOUBLE PRECISION NOT NULL,
    end_time        DOUBLE PRECISION,
    tries           INTEGER NOT NULL DEFAULT 1,
    error_type      TEXT,
    error_message   TEXT,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE handoffs (
    handoff_id TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    subject    TEXT,
    status     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    decision   TEXT,
    decided_by TEXT,
    decided_at DOUBLE PRECISION,
    note       TEXT
);
CREATE INDEX handoffs_by_run ON handoffs (run_id);
CREATE INDEX handoffs_by_status ON handoffs (status, created_at);
