-- Usage a run's retries superseded (counted apart from its totals), calls of unknown usage or
-- price, and the trace of the run's span (a replay's span links to it).
ALTER TABLE runs ADD COLUMN retried_input_tokens {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN retried_output_tokens {BIGINT} NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN retried_cost_usd {REAL} NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN unknown_usage_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN unpriced_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN trace_id TEXT;
ALTER TABLE runs ADD COLUMN span_id TEXT;
