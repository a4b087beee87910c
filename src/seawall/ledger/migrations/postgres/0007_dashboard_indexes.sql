-- Indexes for the dashboard's runs page (twin of the SQLite migration 0007).

-- Text search in error messages scans only the runs that have one (the failed minority), newest
-- first. Unlike SQLite's, the index does not hold the message itself: a B-tree entry is limited
-- to about 2.7 kB and an error message may be longer.
CREATE INDEX runs_errors ON runs (start_time DESC, run_id) WHERE error_message IS NOT NULL;
-- An agent combined with a status or an error class.
CREATE INDEX runs_by_agent_status ON runs (agent, status, start_time DESC);
CREATE INDEX runs_by_agent_class ON runs (agent, error_class, start_time DESC)
    WHERE error_class IS NOT NULL;
-- A run's replays (run detail page); only replays have replay_of.
CREATE INDEX runs_by_replay ON runs (replay_of) WHERE replay_of IS NOT NULL;
