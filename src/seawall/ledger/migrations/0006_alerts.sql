-- Alerts (drift, breaker openings, DLQ growth, hand-offs waiting, overdue runs), the state that
-- keeps a sustained condition to one alert, and the per-run samples drift detection compares.

CREATE TABLE alerts (
    alert_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    agent       TEXT,
    feature     TEXT,
    statistic   {REAL},
    threshold   {REAL},
    window_desc TEXT NOT NULL,
    message     TEXT NOT NULL,
    details     TEXT NOT NULL,
    at          {REAL} NOT NULL
);
CREATE INDEX alerts_by_at ON alerts (at);
CREATE INDEX alerts_by_agent ON alerts (agent, at);
CREATE INDEX alerts_by_kind ON alerts (kind, at);

-- One JSON document per key ('drift:<agent>', 'dlq_growth:<agent>', ...), changed in one
-- transaction together with the alerts the change raises, so every process shares it.
CREATE TABLE alert_state (
    state_key  TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    updated_at {REAL} NOT NULL
);

-- What drift detection compares: one row per finished run of a watched agent.
CREATE TABLE drift_samples (
    agent        TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    at           {REAL} NOT NULL,
    decision     TEXT,
    output_bytes INTEGER,
    tokens       INTEGER,
    cost_usd     {REAL},
    latency      {REAL},
    confidence   {REAL},
    verified     INTEGER,
    PRIMARY KEY (agent, run_id)
);
CREATE INDEX drift_samples_by_agent ON drift_samples (agent, at);
