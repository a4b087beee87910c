-- Graph nodes and circuit breakers.

-- A graph run has workflow = graph name and node NULL; its node runs have the same workflow,
-- parent_run_id = the graph run, and node = the node's name.
ALTER TABLE runs ADD COLUMN node TEXT;
CREATE INDEX runs_by_workflow ON runs (workflow, start_time DESC) WHERE workflow IS NOT NULL;

CREATE TABLE breakers (
    name         TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0,
    opened_at    {REAL},
    reason       TEXT,
    manual       INTEGER NOT NULL DEFAULT 0,
    probe_owner  TEXT,
    probe_at     {REAL},
    updated_at   {REAL} NOT NULL
){WITHOUT_ROWID};

CREATE TABLE breaker_events (
    name       TEXT NOT NULL,
    at         {REAL} NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    reason     TEXT
);
CREATE INDEX breaker_events_by_name ON breaker_events (name, at);

-- Retry budgets: calls and retries per name per one-second bucket, shared by every process.
CREATE TABLE retry_budget (
    name    TEXT NOT NULL,
    bucket  {BIGINT} NOT NULL,
    calls   {BIGINT} NOT NULL DEFAULT 0,
    retries {BIGINT} NOT NULL DEFAULT 0,
    PRIMARY KEY (name, bucket)
){WITHOUT_ROWID};
