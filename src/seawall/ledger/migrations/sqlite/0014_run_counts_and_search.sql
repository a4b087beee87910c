-- The dashboard's figures without rescanning the runs (twin of the PostgreSQL migration 0014).
--
-- run_counts: the runs counted by the hour they started in, agent, status and error class ('' for
-- none), with their retries, tokens and cost. Triggers on runs keep it in the writing
-- transaction, whichever statement changes a run (the store's writes, a redrive, a retry): the
-- old row's figures leave its key, the new row's join theirs. /metrics and the overview's
-- buckets (whole hours) sum it instead of the runs.
CREATE TABLE run_counts (
    hour          INTEGER NOT NULL,
    agent         TEXT NOT NULL,
    status        TEXT NOT NULL,
    error_class   TEXT NOT NULL,
    slot          INTEGER NOT NULL,
    runs          INTEGER NOT NULL,
    retries       INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    PRIMARY KEY (hour, agent, status, error_class, slot)
) WITHOUT ROWID;
INSERT INTO run_counts
    SELECT CAST(start_time / 3600 AS INTEGER), agent, status, COALESCE(error_class, ''), 0,
        COUNT(*), SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), SUM(input_tokens),
        SUM(output_tokens), SUM(COALESCE(cost_usd, 0))
    FROM runs GROUP BY 1, 2, 3, 4;
CREATE TRIGGER run_counts_insert AFTER INSERT ON runs BEGIN
    INSERT INTO run_counts VALUES (
        CAST(NEW.start_time / 3600 AS INTEGER), NEW.agent, NEW.status,
        COALESCE(NEW.error_class, ''), 0, 1, MAX(NEW.attempts - 1, 0), NEW.input_tokens,
        NEW.output_tokens, COALESCE(NEW.cost_usd, 0)
    ) ON CONFLICT (hour, agent, status, error_class, slot) DO UPDATE SET
        runs = runs + excluded.runs, retries = retries + excluded.retries,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cost_usd = cost_usd + excluded.cost_usd;
END;
CREATE TRIGGER run_counts_update AFTER UPDATE OF
    start_time, agent, status, error_class, attempts, input_tokens, output_tokens, cost_usd
ON runs WHEN OLD.start_time IS NOT NEW.start_time OR OLD.agent IS NOT NEW.agent
    OR OLD.status IS NOT NEW.status OR OLD.error_class IS NOT NEW.error_class
    OR OLD.attempts IS NOT NEW.attempts OR OLD.input_tokens IS NOT NEW.input_tokens
    OR OLD.output_tokens IS NOT NEW.output_tokens OR OLD.cost_usd IS NOT NEW.cost_usd
BEGIN
    UPDATE run_counts SET
        runs = runs - 1, retries = retries - MAX(OLD.attempts - 1, 0),
        input_tokens = input_tokens - OLD.input_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        cost_usd = cost_usd - COALESCE(OLD.cost_usd, 0)
    WHERE hour = CAST(OLD.start_time / 3600 AS INTEGER) AND agent = OLD.agent
        AND status = OLD.status AND error_class = COALESCE(OLD.error_class, '') AND slot = 0;
    INSERT INTO run_counts VALUES (
        CAST(NEW.start_time / 3600 AS INTEGER), NEW.agent, NEW.status,
        COALESCE(NEW.error_class, ''), 0, 1, MAX(NEW.attempts - 1, 0), NEW.input_tokens,
        NEW.output_tokens, COALESCE(NEW.cost_usd, 0)
    ) ON CONFLICT (hour, agent, status, error_class, slot) DO UPDATE SET
        runs = runs + excluded.runs, retries = retries + excluded.retries,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cost_usd = cost_usd + excluded.cost_usd;
END;
CREATE TRIGGER run_counts_delete AFTER DELETE ON runs BEGIN
    UPDATE run_counts SET
        runs = runs - 1, retries = retries - MAX(OLD.attempts - 1, 0),
        input_tokens = input_tokens - OLD.input_tokens,
        output_tokens = output_tokens - OLD.output_tokens,
        cost_usd = cost_usd - COALESCE(OLD.cost_usd, 0)
    WHERE hour = CAST(OLD.start_time / 3600 AS INTEGER) AND agent = OLD.agent
        AND status = OLD.status AND error_class = COALESCE(OLD.error_class, '') AND slot = 0;
END;
--
-- step_counts: the finished tool and model calls of the settled runs (final, or waiting for a
-- person), counted by the hour their run started in, its agent, the call's kind and name, with
-- failures, retries, seconds and a latency histogram (bNN: the calls within the NNth bound of
-- seawall.ledger.LATENCY_BOUNDS and above the one before; b18 above them all). A run's calls
-- join the counts when it settles and leave them if it runs again (its steps change only while
-- it runs): kept by a trigger on the run's status, so a step's own write costs nothing more.
-- /metrics and the overview read their latency histograms from it.
-- slot: always 0 here (PostgreSQL spreads concurrent writers over slots).
CREATE TABLE step_counts (
    hour    INTEGER NOT NULL,
    agent   TEXT NOT NULL,
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    slot    INTEGER NOT NULL,
    calls   INTEGER NOT NULL,
    errors  INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    seconds REAL NOT NULL,
    b00     INTEGER NOT NULL,
    b01     INTEGER NOT NULL,
    b02     INTEGER NOT NULL,
    b03     INTEGER NOT NULL,
    b04     INTEGER NOT NULL,
    b05     INTEGER NOT NULL,
    b06     INTEGER NOT NULL,
    b07     INTEGER NOT NULL,
    b08     INTEGER NOT NULL,
    b09     INTEGER NOT NULL,
    b10     INTEGER NOT NULL,
    b11     INTEGER NOT NULL,
    b12     INTEGER NOT NULL,
    b13     INTEGER NOT NULL,
    b14     INTEGER NOT NULL,
    b15     INTEGER NOT NULL,
    b16     INTEGER NOT NULL,
    b17     INTEGER NOT NULL,
    b18     INTEGER NOT NULL,
    PRIMARY KEY (hour, agent, kind, name, slot)
) WITHOUT ROWID;
INSERT INTO step_counts (hour, agent, kind, name, slot, calls, errors, retries, seconds, b00, b01, b02, b03, b04, b05, b06, b07, b08, b09, b10, b11, b12, b13, b14, b15, b16, b17, b18)
    SELECT CAST(r.start_time / 3600 AS INTEGER), r.agent, s.kind, s.name, 0,
        COUNT(*), SUM(s.status = 'failed'), SUM(s.tries - 1), SUM(s.end_time - s.start_time),
        SUM(s.end_time - s.start_time <= 0.0005),
        SUM(s.end_time - s.start_time > 0.0005 AND s.end_time - s.start_time <= 0.001),
        SUM(s.end_time - s.start_time > 0.001 AND s.end_time - s.start_time <= 0.0025),
        SUM(s.end_time - s.start_time > 0.0025 AND s.end_time - s.start_time <= 0.005),
        SUM(s.end_time - s.start_time > 0.005 AND s.end_time - s.start_time <= 0.01),
        SUM(s.end_time - s.start_time > 0.01 AND s.end_time - s.start_time <= 0.02),
        SUM(s.end_time - s.start_time > 0.02 AND s.end_time - s.start_time <= 0.04),
        SUM(s.end_time - s.start_time > 0.04 AND s.end_time - s.start_time <= 0.08),
        SUM(s.end_time - s.start_time > 0.08 AND s.end_time - s.start_time <= 0.16),
        SUM(s.end_time - s.start_time > 0.16 AND s.end_time - s.start_time <= 0.32),
        SUM(s.end_time - s.start_time > 0.32 AND s.end_time - s.start_time <= 0.64),
        SUM(s.end_time - s.start_time > 0.64 AND s.end_time - s.start_time <= 1.28),
        SUM(s.end_time - s.start_time > 1.28 AND s.end_time - s.start_time <= 2.56),
        SUM(s.end_time - s.start_time > 2.56 AND s.end_time - s.start_time <= 5.12),
        SUM(s.end_time - s.start_time > 5.12 AND s.end_time - s.start_time <= 10.24),
        SUM(s.end_time - s.start_time > 10.24 AND s.end_time - s.start_time <= 20.48),
        SUM(s.end_time - s.start_time > 20.48 AND s.end_time - s.start_time <= 40.96),
        SUM(s.end_time - s.start_time > 40.96 AND s.end_time - s.start_time <= 81.92),
        SUM(s.end_time - s.start_time > 81.92)
    FROM steps s JOIN runs r ON r.run_id = s.run_id
    WHERE r.status IN ('succeeded', 'failed', 'skipped', 'quarantined', 'cancelled', 'awaiting_human') AND s.end_time IS NOT NULL
        AND s.kind IN ('tool', 'llm')
    GROUP BY 1, 2, 3, 4;
CREATE TRIGGER step_counts_final AFTER UPDATE OF status ON runs
WHEN NEW.status IN ('succeeded', 'failed', 'skipped', 'quarantined', 'cancelled', 'awaiting_human') AND OLD.status NOT IN ('succeeded', 'failed', 'skipped', 'quarantined', 'cancelled', 'awaiting_human') BEGIN
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
CREATE TRIGGER step_counts_unfinal AFTER UPDATE OF status ON runs
WHEN OLD.status IN ('succeeded', 'failed', 'skipped', 'quarantined', 'cancelled', 'awaiting_human') AND NEW.status NOT IN ('succeeded', 'failed', 'skipped', 'quarantined', 'cancelled', 'awaiting_human') BEGIN
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
--
-- runs_search: the error messages in a full-text index of trigrams (FTS5), one row per run that
-- has one, under the run's rowid (the triggers find a run's row by it) with its run_id (what
-- the search returns, whatever a VACUUM does to rowids). The runs page's text search (a substring, as LIKE '%...%')
-- asks it for the candidate runs instead of reading every failed run's message; the page still
-- checks the message itself. Kept by triggers like run_counts.
CREATE VIRTUAL TABLE runs_search USING fts5(error_message, run_id UNINDEXED, tokenize = 'trigram');
INSERT INTO runs_search (rowid, error_message, run_id)
    SELECT rowid, error_message, run_id FROM runs WHERE error_message IS NOT NULL;
CREATE TRIGGER runs_search_insert AFTER INSERT ON runs WHEN NEW.error_message IS NOT NULL BEGIN
    INSERT INTO runs_search (rowid, error_message, run_id)
        VALUES (NEW.rowid, NEW.error_message, NEW.run_id);
END;
CREATE TRIGGER runs_search_update AFTER UPDATE OF error_message ON runs
WHEN OLD.error_message IS NOT NEW.error_message BEGIN
    DELETE FROM runs_search WHERE rowid = OLD.rowid;
    INSERT INTO runs_search (rowid, error_message, run_id)
        SELECT NEW.rowid, NEW.error_message, NEW.run_id WHERE NEW.error_message IS NOT NULL;
END;
CREATE TRIGGER runs_search_delete AFTER DELETE ON runs WHEN OLD.error_message IS NOT NULL BEGIN
    DELETE FROM runs_search WHERE rowid = OLD.rowid;
END;
