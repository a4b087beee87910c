-- Indexes for the dashboard's runs page: every filter combination answers a page in
-- milliseconds on a ledger of 1,000,000 runs (benchmarks/bench_dashboard.py).

-- Text search in error messages scans only the runs that have one (the failed minority), in
-- this covering index, newest first; the query adds "error_message IS NOT NULL" so it applies.
CREATE INDEX runs_errors ON runs (start_time DESC, run_id, agent, status, error_class, error_message)
    WHERE error_message IS NOT NULL;
-- An agent combined with a status or an error class.
CREATE INDEX runs_by_agent_status ON runs (agent, status, start_time DESC);
CREATE INDEX runs_by_agent_class ON runs (agent, error_class, start_time DESC)
    WHERE error_class IS NOT NULL;
-- A run's replays (run detail page); only replays have replay_of.
CREATE INDEX runs_by_replay ON runs (replay_of) WHERE replay_of IS NOT NULL;
