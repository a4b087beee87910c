-- Verifier verdicts, operator cancellation.

CREATE TABLE verifications (
    run_id     TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    ordinal    INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    passed     INTEGER NOT NULL,
    error      INTEGER NOT NULL DEFAULT 0,
    score      DOUBLE PRECISION,
    message    TEXT,
    duration   DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, attempt, ordinal)
);

ALTER TABLE runs ADD COLUMN cancel_requested_at DOUBLE PRECISION;
ALTER TABLE runs ADD COLUMN cancel_reason TEXT;
