-- The dashboard's figures without rescanning the runs (twin of the SQLite migration 0014).
--
-- run_counts: the runs counted by the hour they started in, agent, status and error class ('' for
-- none), with their retries, tokens and cost (slot: see step_counts). A trigger on runs keeps it in the writing
-- transaction, whichever statement changes a run: the old row's figures leave its key, the new
-- row's join theirs. /metrics and the overview's buckets (whole hours) sum it instead of the runs.
CREATE TABLE run_counts (
    hour          BIGINT NOT NULL,
    agent         TEXT NOT NULL,
    status        TEXT NOT NULL,
    error_class   TEXT NOT NULL,
    slot          INTEGER NOT NULL,
    runs          BIGINT NOT NULL,
    retries       BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (hour, agent, status, error_class, slot)
);
INSERT INTO run_counts
    SELECT floor(start_time / 3600)::bigint, agent, status, COALESCE(error_class, ''), 0,
        COUNT(*), SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), SUM(input_tokens),
        SUM(output_tokens), SUM(COALESCE(cost_usd, 0))
    FROM runs GROUP BY 1, 2, 3, 4;
CREATE FUNCTION run_counts_keep() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO run_counts VALUES (
            floor(OLD.start_time / 3600)::bigint, OLD.agent, OLD.status,
            COALESCE(OLD.error_class, ''), pg_backend_pid() % 64, -1,
            -GREATEST(OLD.attempts - 1, 0), -OLD.input_tokens, -OLD.output_tokens,
            -COALESCE(OLD.cost_usd, 0)
        ) ON CONFLICT (hour, agent, status, error_class, slot) DO UPDATE SET
            runs = run_counts.runs + EXCLUDED.runs,
            retries = run_counts.retries + EXCLUDED.retries,
            input_tokens = run_counts.input_tokens + EXCLUDED.input_tokens,
            output_tokens = run_counts.output_tokens + EXCLUDED.output_tokens,
            cost_usd = run_counts.cost_usd + EXCLUDED.cost_usd;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO run_counts VALUES (
            floor(NEW.start_time / 3600)::bigint, NEW.agent, NEW.status,
            COALESCE(NEW.error_class, ''), pg_backend_pid() % 64, 1,
            GREATEST(NEW.attempts - 1, 0), NEW.input_tokens, NEW.output_tokens,
            COALESCE(NEW.cost_usd, 0)
        ) ON CONFLICT (hour, agent, status, error_class, slot) DO UPDATE SET
            runs = run_counts.runs + EXCLUDED.runs,
            retries = run_counts.retries + EXCLUDED.retries,
            input_tokens = run_counts.input_tokens + EXCLUDED.input_tokens,
            output_tokens = run_counts.output_tokens + EXCLUDED.output_tokens,
            cost_usd = run_counts.cost_usd + EXCLUDED.cost_usd;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER run_counts_rows AFTER INSERT OR DELETE ON runs
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
-- step_counts: the finished tool and model calls of the settled runs (final, or waiting for a
-- person), counted by the hour their run started in, its agent, the call's kind and name, with
-- failures, retries, seconds and a latency histogram (bNN: the calls within the NNth bound of
-- seawall.ledger.LATENCY_BOUNDS and above the one before; b18 above them all). A run's calls
-- join the counts when it settles and leave them if it runs again (its steps change only while
-- it runs): kept by a trigger on the run's status, so a step's own write costs nothing more.
-- /metrics and the overview read their latency histograms from it.
-- slot, here and in run_counts: the writing connection's (its process id modulo 64), so
-- concurrent transactions add to rows of their own instead of waiting for each other's row locks
-- until they commit; a key's figures are the sum over its slots.
CREATE TABLE step_counts (
    hour    BIGINT NOT NULL,
    agent   TEXT NOT NULL,
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    slot    INTEGER NOT NULL,
    calls   BIGINT NOT NULL,
    errors  BIGINT NOT NULL,
    retries BIGINT NOT NULL,
    seconds DOUBLE PRECISION NOT NULL,
    b00     BIGINT NOT NULL,
    b01     BIGINT NOT NULL,
    b02     BIGINT NOT NULL,
    b03     BIGINT NOT NULL,
    b04     BIGINT NOT NULL,
    b05     BIGINT NOT NULL,
    b06     BIGINT NOT NULL,
    b07     BIGINT NOT NULL,
    b08     BIGINT NOT NULL,
    b09     BIGINT NOT NULL,
    b10     BIGINT NOT NULL,
    b11     BIGINT NOT NULL,
    b12     BIGINT NOT NULL,
    b13     BIGINT NOT NULL,
    b14     BIGINT NOT NULL,
    b15     BIGINT NOT NULL,
    b16     BIGINT NOT NULL,
    b17     BIGINT NOT NULL,
    b18     BIGINT NOT NULL,
    PRIMARY KEY (hour, agent, kind, name, slot)
);
INSERT INTO step_counts (hour, agent, kind, name, slot, calls, errors, retries, seconds, b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11, b12, b13, b14, b15, b16, b17, b18)
    SELECT floor(r.start_time / 3600)::bigint, r.agent, s.kind, s.name, 0,
        COUNT(*), COUNT(*) FILTER (WHERE s.status = 'failed'), SUM(s.tries - 1),
        SUM(s.end_time - s.start_time),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time <= 0.0005),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.0005 AND s.end_time - s.start_time <= 0.001),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.001 AND s.end_time - s.start_time <= 0.0025),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.0025 AND s.end_time - s.start_time <= 0.005),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.005 AND s.end_time - s.start_time <= 0.01),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.01 AND s.end_time - s.start_time <= 0.02),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.02 AND s.end_time - s.start_time <= 0.04),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.04 AND s.end_time - s.start_time <= 0.08),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.08 AND s.end_time - s.start_time <= 0.16),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.16 AND s.end_time - s.start_time <= 0.32),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.32 AND s.end_time - s.start_time <= 0.64),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 0.64 AND s.end_time - s.start_time <= 1.28),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 1.28 AND s.end_time - s.start_time <= 2.56),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 2.56 AND s.end_time - s.start_time <= 5.12),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 5.12 AND s.end_time - s.start_time <= 10.24),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 10.24 AND s.end_time - s.start_time <= 20.48),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 20.48 AND s.end_time - s.start_time <= 40.96),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 40.96 AND s.end_time - s.start_time <= 81.92),
        COUNT(*) FILTER (WHERE s.end_time - s.start_time > 81.92)
    FROM steps s JOIN runs r ON r.run_id = s.run_id
    WHERE r.status IN ('succeeded', 'failed', 'skipped', 'quarantined', 'cancelled', 'awaiting_human') AND s.end_time IS NOT NULL
        AND s.kind IN ('tool', 'llm')
    GROUP BY 1, 2, 3, 4;
CREATE FUNCTION step_counts_keep() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF OLD.status IN ('succeeded', 'failed', 'skipped', 'quarantined', 'cancelled', 'awaiting_human') AND NEW.status NOT IN ('succeeded', 'failed', 'skipped', 'quarantined', 'cancelled', 'awaiting_human') THEN
        INSERT INTO step_counts (hour, agent, kind, name, slot, calls, errors, retries, seconds, b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11, b12, b13, b14, b15, b16, b17, b18)
        SELECT floor(OLD.start_time / 3600)::bigint, OLD.agent, kind, name, pg_backend_pid() % 64,
            -COUNT(*), -COUNT(*) FILTER (WHERE status = 'failed'), -SUM(tries - 1),
            -SUM(end_time - start_time),
            -COUNT(*) FILTER (WHERE end_time - start_time <= 0.0005),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.0005 AND end_time - start_time <= 0.001),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.001 AND end_time - start_time <= 0.0025),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.0025 AND end_time - start_time <= 0.005),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.005 AND end_time - start_time <= 0.01),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.01 AND end_time - start_time <= 0.02),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.02 AND end_time - start_time <= 0.04),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.04 AND end_time - start_time <= 0.08),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.08 AND end_time - start_time <= 0.16),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.16 AND end_time - start_time <= 0.32),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.32 AND end_time - start_time <= 0.64),
            -COUNT(*) FILTER (WHERE end_time - start_time > 0.64 AND end_time - start_time <= 1.28),
            -COUNT(*) FILTER (WHERE end_time - start_time > 1.28 AND end_time - start_time <= 2.56),
            -COUNT(*) FILTER (WHERE end_time - start_time > 2.56 AND end_time - start_time <= 5.12),
            -COUNT(*) FILTER (WHERE end_time - start_time > 5.12 AND end_time - start_time <= 10.24),
            -COUNT(*) FILTER (WHERE end_time - start_time > 10.24 AND end_time - start_time <= 20.48),
            -COUNT(*) FILTER (WHERE end_time - start_time > 20.48 AND end_time - start_time <= 40.96),
            -COUNT(*) FILTER (WHERE end_time - start_time > 40.96 AND end_time - start_time <= 81.92),
            -COUNT(*) FILTER (WHERE end_time - start_time > 81.92)
        FROM steps WHERE run_id = OLD.run_id AND end_time IS NOT NULL AND kind IN ('tool', 'llm')
        GROUP BY kind, name
        ON CONFLICT (hour, agent, kind, name, slot) DO UPDATE SET
            calls = step_counts.calls + EXCLUDED.calls,
            errors = step_counts.errors + EXCLUDED.errors,
            retries = step_counts.retries + EXCLUDED.retries,
            seconds = step_counts.seconds + EXCLUDED.seconds,
            b00 = step_counts.b00 + EXCLUDED.b00, b01 = step_counts.b01 + EXCLUDED.b01,
            b02 = step_counts.b02 + EXCLUDED.b02, b03 = step_counts.b03 + EXCLUDED.b03,
            b04 = step_counts.b04 + EXCLUDED.b04, b05 = step_counts.b05 + EXCLUDED.b05,
            b06 = step_counts.b06 + EXCLUDED.b06, b07 = step_counts.b07 + EXCLUDED.b07,
            b08 = step_counts.b08 + EXCLUDED.b08, b09 = step_counts.b09 + EXCLUDED.b09,
            b10 = step_counts.b10 + EXCLUDED.b10, b11 = step_counts.b11 + EXCLUDED.b11,
            b12 = step_counts.b12 + EXCLUDED.b12, b13 = step_counts.b13 + EXCLUDED.b13,
            b14 = step_counts.b14 + EXCLUDED.b14, b15 = step_counts.b15 + EXCLUDED.b15,
            b16 = step_counts.b16 + EXCLUDED.b16, b17 = step_counts.b17 + EXCLUDED.b17,
            b18 = step_counts.b18 + EXCLUDED.b18;
    ELSIF NEW.status IN ('succeeded', 'failed', 'skipped', 'quarantined', 'cancelled', 'awaiting_human') AND OLD.status NOT IN ('succeeded', 'failed', 'skipped', 'quarantined', 'cancelled', 'awaiting_human') THEN
        INSERT INTO step_counts (hour, agent, kind, name, slot, calls, errors, retries, seconds, b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11, b12, b13, b14, b15, b16, b17, b18)
        SELECT floor(NEW.start_time / 3600)::bigint, NEW.agent, kind, name, pg_backend_pid() % 64,
            COUNT(*), COUNT(*) FILTER (WHERE status = 'failed'), SUM(tries - 1),
            SUM(end_time - start_time),
            COUNT(*) FILTER (WHERE end_time - start_time <= 0.0005),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.0005 AND end_time - start_time <= 0.001),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.001 AND end_time - start_time <= 0.0025),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.0025 AND end_time - start_time <= 0.005),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.005 AND end_time - start_time <= 0.01),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.01 AND end_time - start_time <= 0.02),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.02 AND end_time - start_time <= 0.04),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.04 AND end_time - start_time <= 0.08),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.08 AND end_time - start_time <= 0.16),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.16 AND end_time - start_time <= 0.32),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.32 AND end_time - start_time <= 0.64),
            COUNT(*) FILTER (WHERE end_time - start_time > 0.64 AND end_time - start_time <= 1.28),
            COUNT(*) FILTER (WHERE end_time - start_time > 1.28 AND end_time - start_time <= 2.56),
            COUNT(*) FILTER (WHERE end_time - start_time > 2.56 AND end_time - start_time <= 5.12),
            COUNT(*) FILTER (WHERE end_time - start_time > 5.12 AND end_time - start_time <= 10.24),
            COUNT(*) FILTER (WHERE end_time - start_time > 10.24 AND end_time - start_time <= 20.48),
            COUNT(*) FILTER (WHERE end_time - start_time > 20.48 AND end_time - start_time <= 40.96),
            COUNT(*) FILTER (WHERE end_time - start_time > 40.96 AND end_time - start_time <= 81.92),
            COUNT(*) FILTER (WHERE end_time - start_time > 81.92)
        FROM steps WHERE run_id = NEW.run_id AND end_time IS NOT NULL AND kind IN ('tool', 'llm')
        GROUP BY kind, name
        ON CONFLICT (hour, agent, kind, name, slot) DO UPDATE SET
            calls = step_counts.calls + EXCLUDED.calls,
            errors = step_counts.errors + EXCLUDED.errors,
            retries = step_counts.retries + EXCLUDED.retries,
            seconds = step_counts.seconds + EXCLUDED.seconds,
            b00 = step_counts.b00 + EXCLUDED.b00, b01 = step_counts.b01 + EXCLUDED.b01,
            b02 = step_counts.b02 + EXCLUDED.b02, b03 = step_counts.b03 + EXCLUDED.b03,
            b04 = step_counts.b04 + EXCLUDED.b04, b05 = step_counts.b05 + EXCLUDED.b05,
            b06 = step_counts.b06 + EXCLUDED.b06, b07 = step_counts.b07 + EXCLUDED.b07,
            b08 = step_counts.b08 + EXCLUDED.b08, b09 = step_counts.b09 + EXCLUDED.b09,
            b10 = step_counts.b10 + EXCLUDED.b10, b11 = step_counts.b11 + EXCLUDED.b11,
            b12 = step_counts.b12 + EXCLUDED.b12, b13 = step_counts.b13 + EXCLUDED.b13,
            b14 = step_counts.b14 + EXCLUDED.b14, b15 = step_counts.b15 + EXCLUDED.b15,
            b16 = step_counts.b16 + EXCLUDED.b16, b17 = step_counts.b17 + EXCLUDED.b17,
            b18 = step_counts.b18 + EXCLUDED.b18;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER step_counts_keep AFTER UPDATE OF status ON runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION step_counts_keep();
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
