-- The dashboard's figures without rescanning the runs (twin of the SQLite migration 0014).
--
-- run_counts: the runs counted by the hour they started in, agent, status and error class ('' for
-- none), with their retries, tokens and cost. A trigger on runs keeps it in the writing
-- transaction, whichever statement changes a run: the old row's figures leave its key, the new
-- row's join theirs. /metrics and the overview's buckets (whole hours) sum it instead of the runs.
CREATE TABLE run_counts (
    hour          BIGINT NOT NULL,
    agent         TEXT NOT NULL,
    status        TEXT NOT NULL,
    error_class   TEXT NOT NULL,
    runs          BIGINT NOT NULL,
    retries       BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (hour, agent, status, error_class)
);
INSERT INTO run_counts
    SELECT floor(start_time / 3600)::bigint, agent, status, COALESCE(error_class, ''),
        COUNT(*), SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), SUM(input_tokens),
        SUM(output_tokens), SUM(COALESCE(cost_usd, 0))
    FROM runs GROUP BY 1, 2, 3, 4;
CREATE FUNCTION run_counts_keep() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE run_counts SET
            runs = runs - 1, retries = retries - GREATEST(OLD.attempts - 1, 0),
            input_tokens = input_tokens - OLD.input_tokens,
            output_tokens = output_tokens - OLD.output_tokens,
            cost_usd = cost_usd - COALESCE(OLD.cost_usd, 0)
        WHERE hour = floor(OLD.start_time / 3600)::bigint AND agent = OLD.agent
            AND status = OLD.status AND error_class = COALESCE(OLD.error_class, '');
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO run_counts VALUES (
            floor(NEW.start_time / 3600)::bigint, NEW.agent, NEW.status,
            COALESCE(NEW.error_class, ''), 1, GREATEST(NEW.attempts - 1, 0), NEW.input_tokens,
            NEW.output_tokens, COALESCE(NEW.cost_usd, 0)
        ) ON CONFLICT (hour, agent, status, error_class) DO UPDATE SET
            runs = run_counts.runs + EXCLUDED.runs,
            retries = run_counts.retries + EXCLUDED.retries,
            input_tokens = run_counts.input_tokens + EXCLUDED.input_tokens,
            output_tokens = run_counts.output_tokens + EXCLUDED.output_tokens,
            cost_usd = run_counts.cost_usd + EXCLUDED.cost_usd;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER run_counts_insert AFTER INSERT OR DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION run_counts_keep();
CREATE TRIGGER run_counts_update AFTER UPDATE OF
    start_time, agent, status, error_class, attempts, input_tokens, output_tokens, cost_usd
ON runs FOR EACH ROW WHEN (
    OLD.start_time IS DISTINCT FROM NEW.start_time OR OLD.agent IS DISTINCT FROM NEW.agent
    OR OLD.status IS DISTINCT FROM NEW.status OR OLD.error_class IS DISTINCT FROM NEW.error_class
    OR OLD.attempts IS DISTINCT FROM NEW.attempts
    OR OLD.input_tokens IS DISTINCT FROM NEW.input_tokens
    OR OLD.output_tokens IS DISTINCT FROM NEW.output_tokens
    OR OLD.cost_usd IS DISTINCT FROM NEW.cost_usd
) EXECUTE FUNCTION run_counts_keep();
--
-- runs_search: a trigram index (pg_trgm's GIN operator class) on the error messages, which the
-- runs page's text search (ILIKE '%...%') uses instead of reading every failed run's message.
-- Where the extension cannot be installed (no privilege, not shipped), the search reads the
-- messages as before; PostgreSQL keeps the index itself.
DO $$
DECLARE
    home TEXT;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm unavailable (%): text search reads the error messages', SQLERRM;
    END;
    SELECT n.nspname INTO home FROM pg_extension e
        JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    IF home IS NOT NULL THEN
        EXECUTE format(
            'CREATE INDEX runs_search ON runs USING gin (error_message %I.gin_trgm_ops)', home
        );
    END IF;
END $$;
