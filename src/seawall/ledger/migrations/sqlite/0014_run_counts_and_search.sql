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
    runs          INTEGER NOT NULL,
    retries       INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    PRIMARY KEY (hour, agent, status, error_class)
) WITHOUT ROWID;
INSERT INTO run_counts
    SELECT CAST(start_time / 3600 AS INTEGER), agent, status, COALESCE(error_class, ''),
        COUNT(*), SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), SUM(input_tokens),
        SUM(output_tokens), SUM(COALESCE(cost_usd, 0))
    FROM runs GROUP BY 1, 2, 3, 4;
CREATE TRIGGER run_counts_insert AFTER INSERT ON runs BEGIN
    INSERT INTO run_counts VALUES (
        CAST(NEW.start_time / 3600 AS INTEGER), NEW.agent, NEW.status,
        COALESCE(NEW.error_class, ''), 1, MAX(NEW.attempts - 1, 0), NEW.input_tokens,
        NEW.output_tokens, COALESCE(NEW.cost_usd, 0)
    ) ON CONFLICT (hour, agent, status, error_class) DO UPDATE SET
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
        AND status = OLD.status AND error_class = COALESCE(OLD.error_class, '');
    INSERT INTO run_counts VALUES (
        CAST(NEW.start_time / 3600 AS INTEGER), NEW.agent, NEW.status,
        COALESCE(NEW.error_class, ''), 1, MAX(NEW.attempts - 1, 0), NEW.input_tokens,
        NEW.output_tokens, COALESCE(NEW.cost_usd, 0)
    ) ON CONFLICT (hour, agent, status, error_class) DO UPDATE SET
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
        AND status = OLD.status AND error_class = COALESCE(OLD.error_class, '');
END;
--
-- runs_search: the error messages in a full-text index of trigrams (FTS5), one row per run that
-- has one, under the run's rowid. The runs page's text search (a substring, as LIKE '%...%')
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
