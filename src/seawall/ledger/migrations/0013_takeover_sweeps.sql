-- Takeover without the broker: live processes sweep the ledger for runs whose owner died (lease
-- lapsed) or whose message a broker lost (pending, never claimed), and hand each to one taker.
-- route: where a run was sent for a worker to execute it (``celery:QUEUE``); NULL for a run the
-- process that recorded it executes. A sweep hands a run over only to its own route.
-- resent_at: when a sweep last sent the run's id to the workers again (each run is re-sent at
-- most once per bound, however many workers sweep).
ALTER TABLE runs ADD COLUMN route TEXT;
ALTER TABLE runs ADD COLUMN resent_at {REAL};
-- One sweeper at a time per set of interchangeable processes (same agents, same queue): a lease
-- its holder renews at every sweep and any other process may take once it lapsed.
CREATE TABLE sweepers (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at {REAL} NOT NULL,
    swept_at   {REAL} NOT NULL
);
