-- Staged artifacts and their atomic commit, saga compensations, and hand-offs to a person.

-- A run's phase while it settles: NULL while the agent runs, 'committing' once its output and
-- artifact manifest are recorded and the artifacts are being published, 'compensating' once it
-- failed after side effects and its compensations are running. A resumer continues the phase
-- instead of re-running the agent.
ALTER TABLE runs ADD COLUMN phase TEXT;
ALTER TABLE runs ADD COLUMN commit_json TEXT;
CREATE INDEX runs_by_phase ON runs (phase) WHERE phase IS NOT NULL;

CREATE TABLE artifacts (
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    size         {BIGINT} NOT NULL,
    sha256       TEXT NOT NULL,
    committed_at {REAL},
    PRIMARY KEY (run_id, name)
){WITHOUT_ROWID};

CREATE TABLE compensations (
    run_id          TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    tool            TEXT NOT NULL,
    idempotency_key TEXT,
    status          TEXT NOT NULL,
    start_time      {REAL} NOT NULL,
    end_time        {REAL},
    tries           INTEGER NOT NULL DEFAULT 1,
    error_type      TEXT,
    error_message   TEXT,
    PRIMARY KEY (run_id, seq)
){WITHOUT_ROWID};

CREATE TABLE handoffs (
    handoff_id TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    subject    TEXT,
    status     TEXT NOT NULL,
    created_at {REAL} NOT NULL,
    decision   TEXT,
    decided_by TEXT,
    decided_at {REAL},
    note       TEXT
);
CREATE INDEX handoffs_by_run ON handoffs (run_id);
CREATE INDEX handoffs_by_status ON handoffs (status, created_at);
