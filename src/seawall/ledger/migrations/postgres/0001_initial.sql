-- Runs, attempts, the journal and content-addressed blobs.
-- Types mirror the SQLite schema: times are Unix seconds (DOUBLE PRECISION), payload columns
-- are BYTEA holding the same encoded bytes SQLite stores in its BLOB columns.
CREATE TABLE runs (
    run_id           TEXT PRIMARY KEY,
    agent            TEXT NOT NULL,
    status           TEXT NOT NULL,
    start_time       DOUBLE PRECISION NOT NULL,
    end_time         DOUBLE PRECISION,
    input_hash       TEXT NOT NULL,
    output_hash      TEXT,
    input            BYTEA NOT NULL,
    output           BYTEA,
    input_tokens     BIGINT NOT NULL DEFAULT 0,
    output_tokens    BIGINT NOT NULL DEFAULT 0,
    cost_usd         DOUBLE PRECISION DEFAULT 0,
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
    lease_expires_at DOUBLE PRECISION,
    updated_at       DOUBLE PRECISION NOT NULL
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
    start_time    DOUBLE PRECISION NOT NULL,
    end_time      DOUBLE PRECISION,
    status        TEXT NOT NULL,
    error_class   TEXT,
    failure_cause TEXT,
    error_type    TEXT,
    error_message TEXT,
    retry_delay   DOUBLE PRECISION,
    owner         TEXT,
    PRIMARY KEY (run_id, attempt)
);

CREATE TABLE steps (
    run_id          TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    mutating        INTEGER NOT NULL,
    idempotency_key TEXT,
    request_hash    TEXT NOT NULL,
    request         BYTEA NOT NULL,
    response        BYTEA,
    status          TEXT NOT NULL,
    start_time      DOUBLE PRECISION NOT NULL,
    end_time        DOUBLE PRECISION,
    error_type      TEXT,
    error_message   TEXT,
    tries           INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE blobs (
    hash  TEXT PRIMARY KEY,
    codec TEXT NOT NULL,
    size  BIGINT NOT NULL,
    data  BYTEA NOT NULL
);
