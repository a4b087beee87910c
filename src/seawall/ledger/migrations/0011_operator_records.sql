-- What operators decide, kept with the ledger: acknowledgements and silences of alerts, claims on
-- hand-offs, and a log of every decision with the name of who made it (the dashboard records one
-- for each replay, redrive, breaker reset, hand-off decision and alert answer). And an index of
-- the runs whose cost is a lower bound.

-- One acknowledgement per alert: the first one stands.
CREATE TABLE alert_acks (
    alert_id TEXT PRIMARY KEY,
    acked_by TEXT NOT NULL,
    acked_at {REAL} NOT NULL,
    note     TEXT
);

-- A silence mutes the alerts of one kind (of one agent and feature, or of any when NULL) raised
-- between starts_at and ends_at, unless it was lifted earlier.
CREATE TABLE alert_silences (
    silence_id TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    agent      TEXT,
    feature    TEXT,
    starts_at  {REAL} NOT NULL,
    ends_at    {REAL} NOT NULL,
    created_by TEXT NOT NULL,
    note       TEXT,
    lifted_by  TEXT,
    lifted_at  {REAL}
);
CREATE INDEX alert_silences_by_end ON alert_silences (ends_at);

-- Who is looking at an open hand-off (optional: a claim warns others, it does not lock).
CREATE TABLE handoff_claims (
    handoff_id TEXT PRIMARY KEY,
    claimed_by TEXT NOT NULL,
    claimed_at {REAL} NOT NULL
);

-- Every operator decision: who, what, on what, when, and its details (JSON).
CREATE TABLE operator_actions (
    action_id TEXT PRIMARY KEY,
    at        {REAL} NOT NULL,
    operator  TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    details   TEXT NOT NULL
);
CREATE INDEX operator_actions_by_at ON operator_actions (at, action_id);

-- The runs whose cost is a lower bound (a model call had no price): few, so the dashboard counts
-- them without reading the others.
CREATE INDEX runs_unpriced ON runs (start_time, agent, unpriced_calls) WHERE unpriced_calls > 0;
