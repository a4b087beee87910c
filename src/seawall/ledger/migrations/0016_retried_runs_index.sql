-- The runs that were retried, newest first: the runs page's "retried" filter walks this index
-- instead of every run in its range (at 100,000 runs on PostgreSQL, when no run of the last 29
-- days had been retried, the filter scanned the whole table: 8,538 blocks, 103 ms; 35-54
-- blocks this way). Partial: it holds only retried runs, so a run that succeeds at its first
-- attempt never writes to it.
CREATE INDEX IF NOT EXISTS runs_retried ON runs (start_time DESC, run_id DESC) WHERE attempts > 1;
