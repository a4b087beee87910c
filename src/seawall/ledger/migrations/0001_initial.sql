-- Runs, attempts, the journal and content-addressed blobs.
-- Written once for both databases: the braced tokens are the store dialect's types and clauses
-- (see seawall.ledger.migrations). Times are Unix seconds; payload columns hold the same
-- encoded bytes in both databases.
CREATE TABLE runs (
    run_id           TEXT PRIMARY KEY,
    agent            TEXT NOT NULL,
    status           TEXT NOT NULL,
    start_time       {REAL} NOT NULL,
    end_time         {REAL},
    input_hash       TEXT NOT NULL,
    output_hash      TEXT,
    input            {BLOB} NOT NULL,
    output           {BLOB},
    input_tokens     {BIGINT} NOT NULL DEFAULT 0,
    output_tokens    {BIGINT} NOT NULL DEFAULT 0,
    cost_usd         {REAL} DEFAULT 0,
    error_class      TEXT,
    failure_cause    TEXT,
    error_type       TEXT,
    error_message    TEXT,
    error_json       TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    workflow         TEXT,
    parent_run_id    TEXT,
    replay_of        TEXT,
    code_version     TEXT,
    lease_owner      TEXT,
    lease_expires_at {REAL},
    updated_at       {REAL} NOT NULL
);
CREATE INDEX runs_by_start ON runs (start_time DESC);
CREATE INDEX runs_by_status ON runs (status, start_time DESC);
CREATE INDEX runs_by_agent ON runs (agent, start_time DESC);
CREATE INDEX runs_by_class ON runs (error_class, start_time DESC) WHERE error_class IS NOT NULL;
CREATE INDEX runs_by_lease ON runs (lease_expires_at) WHERE status IN ('running', 'pending');
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

CREATE TABLE attempts (
    run_id        TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    start_time    {REAL} NOT NULL,
    end_time      {REAL},
    status        TEXT NOT NULL,
    error_class   TEXT,
    failure_cause TEXT,
    error_type    TEXT,
    error_message TEXT,
    retry_delay   {REAL},
    owner         TEXT,
    PRIMARY KEY (run_id, attempt)
){WITHOUT_ROWID};

CREATE TABLE steps (
    run_id          TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    mutating        INTEGER NOT NULL,
    idempotency_key TEXT,
    request_hash    TEXT NOT NULL,
    request         {BLOB} NOT NULL,
    response        {BLOB},
    status          TEXT NOT NULL,
    start_time      {REAL} NOT NULL,
    end_time        {REAL},
    error_type      TEXT,
    error_message   TEXT,
    tries           INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (run_id, seq)
){WITHOUT_ROWID};

CREATE TABLE blobs (
    hash  TEXT PRIMARY KEY,
    codec TEXT NOT NULL,
    size  {BIGINT} NOT NULL,
    data  {BLOB} NOT NULL
){WITHOUT_ROWID};
