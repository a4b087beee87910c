-- A redrive continues a failed run's journal in a new run (replay_mode 'redrive'). Its DLQ
-- entry names that run from the moment it is created, and the run's end settles the entry.
CREATE INDEX dlq_by_redrive_run ON dlq (redrive_run_id);
-- What an operator said of an in-doubt step: it happened (with its result) or it did not.
CREATE TABLE step_resolutions (
    run_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    decision    TEXT NOT NULL,
    result      TEXT,
    decided_by  TEXT,
    decided_at  {REAL} NOT NULL,
    note        TEXT,
    PRIMARY KEY (run_id, seq)
);
