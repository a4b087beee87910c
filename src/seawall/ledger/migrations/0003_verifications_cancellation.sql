-- Verifier verdicts, operator cancellation.

CREATE TABLE verifications (
    run_id     TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    ordinal    INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    passed     INTEGER NOT NULL,
    error      INTEGER NOT NULL DEFAULT 0,
    score      {REAL},
    message    TEXT,
    duration   {REAL} NOT NULL,
    created_at {REAL} NOT NULL,
    PRIMARY KEY (run_id, attempt, ordinal)
){WITHOUT_ROWID};

ALTER TABLE runs ADD COLUMN cancel_requested_at {REAL};
ALTER TABLE runs ADD COLUMN cancel_reason TEXT;
