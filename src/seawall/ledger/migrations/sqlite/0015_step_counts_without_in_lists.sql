-- step_counts' two triggers (0014) again, with the same conditions written without IN lists.
--
-- SQLite evaluates `x IN (a, b, c...)` in a trigger's WHEN clause by building a lookup table
-- of the list, and it builds it again each time the trigger fires: every run that finishes
-- paid for three of them (final's two tests, unfinal's first) in its closing UPDATE, a cost
-- bench_throughput's sqlite_arun64 shows. An OR of equalities is the same test (a run's status
-- is never NULL) without the table. The bodies are 0014's, unchanged. PostgreSQL's migration
-- 0015 changes nothing: its trigger tests the status in PL/pgSQL, where an IN list builds no
-- table.
DROP TRIGGER step_counts_final;
CREATE TRIGGER step_counts_final AFTER UPDATE OF status ON runs
WHEN (NEW.status = 'succeeded' OR NEW.status = 'failed' OR NEW.status = 'skipped'
    OR NEW.status = 'quarantined' OR NEW.status = 'cancelled' OR NEW.status = 'awaiting_human')
    AND NOT (OLD.status = 'succeeded' OR OLD.status = 'failed' OR OLD.status = 'skipped'
    OR OLD.status = 'quarantined' OR OLD.status = 'cancelled' OR OLD.status = 'awaiting_human')
BEGIN
    INSERT INTO step_counts (hour, agent, kind, name, slot, calls, errors, retries, seconds, b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11, b12, b13, b14, b15, b16, b17, b18)
    SELECT CAST(NEW.start_time / 3600 AS INTEGER), NEW.agent, kind, name, 0,
        COUNT(*), SUM(status = 'failed'), SUM(tries - 1), SUM(end_time - start_time),
        SUM(end_time - start_time <= 0.0005),
        SUM(end_time - start_time > 0.0005 AND end_time - start_time <= 0.001),
        SUM(end_time - start_time > 0.001 AND end_time - start_time <= 0.0025),
        SUM(end_time - start_time > 0.0025 AND end_time - start_time <= 0.005),
        SUM(end_time - start_time > 0.005 AND end_time - start_time <= 0.01),
        SUM(end_time - start_time > 0.01 AND end_time - start_time <= 0.02),
        SUM(end_time - start_time > 0.02 AND end_time - start_time <= 0.04),
        SUM(end_time - start_time > 0.04 AND end_time - start_time <= 0.08),
        SUM(end_time - start_time > 0.08 AND end_time - start_time <= 0.16),
        SUM(end_time - start_time > 0.16 AND end_time - start_time <= 0.32),
        SUM(end_time - start_time > 0.32 AND end_time - start_time <= 0.64),
        SUM(end_time - start_time > 0.64 AND end_time - start_time <= 1.28),
        SUM(end_time - start_time > 1.28 AND end_time - start_time <= 2.56),
        SUM(end_time - start_time > 2.56 AND end_time - start_time <= 5.12),
        SUM(end_time - start_time > 5.12 AND end_time - start_time <= 10.24),
        SUM(end_time - start_time > 10.24 AND end_time - start_time <= 20.48),
        SUM(end_time - start_time > 20.48 AND end_time - start_time <= 40.96),
        SUM(end_time - start_time > 40.96 AND end_time - start_time <= 81.92),
        SUM(end_time - start_time > 81.92)
    FROM steps WHERE run_id = NEW.run_id AND end_time IS NOT NULL AND kind IN ('tool', 'llm')
    GROUP BY kind, name
    ON CONFLICT (hour, agent, kind, name, slot) DO UPDATE SET
        calls = calls + excluded.calls, errors = errors + excluded.errors,
        retries = retries + excluded.retries, seconds = seconds + excluded.seconds,
        b00 = b00 + excluded.b00, b01 = b01 + excluded.b01, b02 = b02 + excluded.b02,
        b03 = b03 + excluded.b03, b04 = b04 + excluded.b04, b05 = b05 + excluded.b05,
        b06 = b06 + excluded.b06, b07 = b07 + excluded.b07, b08 = b08 + excluded.b08,
        b09 = b09 + excluded.b09, b10 = b10 + excluded.b10, b11 = b11 + excluded.b11,
        b12 = b12 + excluded.b12, b13 = b13 + excluded.b13, b14 = b14 + excluded.b14,
        b15 = b15 + excluded.b15, b16 = b16 + excluded.b16, b17 = b17 + excluded.b17,
        b18 = b18 + excluded.b18;
END;
DROP TRIGGER step_counts_unfinal;
CREATE TRIGGER step_counts_unfinal AFTER UPDATE OF status ON runs
WHEN (OLD.status = 'succeeded' OR OLD.status = 'failed' OR OLD.status = 'skipped'
    OR OLD.status = 'quarantined' OR OLD.status = 'cancelled' OR OLD.status = 'awaiting_human')
    AND NOT (NEW.status = 'succeeded' OR NEW.status = 'failed' OR NEW.status = 'skipped'
    OR NEW.status = 'quarantined' OR NEW.status = 'cancelled' OR NEW.status = 'awaiting_human')
BEGIN
    INSERT INTO step_counts (hour, agent, kind, name, slot, calls, errors, retries, seconds, b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11, b12, b13, b14, b15, b16, b17, b18)
    SELECT CAST(OLD.start_time / 3600 AS INTEGER), OLD.agent, kind, name, 0,
        -COUNT(*), -SUM(status = 'failed'), -SUM(tries - 1), -SUM(end_time - start_time),
        -SUM(end_time - start_time <= 0.0005),
        -SUM(end_time - start_time > 0.0005 AND end_time - start_time <= 0.001),
        -SUM(end_time - start_time > 0.001 AND end_time - start_time <= 0.0025),
        -SUM(end_time - start_time > 0.0025 AND end_time - start_time <= 0.005),
        -SUM(end_time - start_time > 0.005 AND end_time - start_time <= 0.01),
        -SUM(end_time - start_time > 0.01 AND end_time - start_time <= 0.02),
        -SUM(end_time - start_time > 0.02 AND end_time - start_time <= 0.04),
        -SUM(end_time - start_time > 0.04 AND end_time - start_time <= 0.08),
        -SUM(end_time - start_time > 0.08 AND end_time - start_time <= 0.16),
        -SUM(end_time - start_time > 0.16 AND end_time - start_time <= 0.32),
        -SUM(end_time - start_time > 0.32 AND end_time - start_time <= 0.64),
        -SUM(end_time - start_time > 0.64 AND end_time - start_time <= 1.28),
        -SUM(end_time - start_time > 1.28 AND end_time - start_time <= 2.56),
        -SUM(end_time - start_time > 2.56 AND end_time - start_time <= 5.12),
        -SUM(end_time - start_time > 5.12 AND end_time - start_time <= 10.24),
        -SUM(end_time - start_time > 10.24 AND end_time - start_time <= 20.48),
        -SUM(end_time - start_time > 20.48 AND end_time - start_time <= 40.96),
        -SUM(end_time - start_time > 40.96 AND end_time - start_time <= 81.92),
        -SUM(end_time - start_time > 81.92)
    FROM steps WHERE run_id = OLD.run_id AND end_time IS NOT NULL AND kind IN ('tool', 'llm')
    GROUP BY kind, name
    ON CONFLICT (hour, agent, kind, name, slot) DO UPDATE SET
        calls = calls + excluded.calls, errors = errors + excluded.errors,
        retries = retries + excluded.retries, seconds = seconds + excluded.seconds,
        b00 = b00 + excluded.b00, b01 = b01 + excluded.b01, b02 = b02 + excluded.b02,
        b03 = b03 + excluded.b03, b04 = b04 + excluded.b04, b05 = b05 + excluded.b05,
        b06 = b06 + excluded.b06, b07 = b07 + excluded.b07, b08 = b08 + excluded.b08,
        b09 = b09 + excluded.b09, b10 = b10 + excluded.b10, b11 = b11 + excluded.b11,
        b12 = b12 + excluded.b12, b13 = b13 + excluded.b13, b14 = b14 + excluded.b14,
        b15 = b15 + excluded.b15, b16 = b16 + excluded.b16, b17 = b17 + excluded.b17,
        b18 = b18 + excluded.b18;
END;
