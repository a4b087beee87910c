"""Structured logs: run records carry run_id, agent, attempt and error_class."""

from __future__ import annotations

import logging

import pytest

from seawall import Context, Retry, Seawall
from seawall.observe.logs import FIELDS, RunContextFilter
from seawall.testing import no_waits


class _FlakyError(Exception):
    """Fails the first attempt."""


def test_run_records_carry_the_run_fields(
    ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="seawall")
    mine = logging.getLogger("tests.agent")
    handler_filter = RunContextFilter()
    stamped: list[logging.LogRecord] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            stamped.append(record)

    keep = _Keep()
    keep.addFilter(handler_filter)
    mine.addHandler(keep)
    mine.setLevel(logging.INFO)
    tries = {"n": 0}
    with no_waits():
        app = Seawall(ledger_url)
        try:

            @app.agent(retry=Retry(attempts=2, retry_on=(_FlakyError,)))
            def flaky(ctx: Context) -> str:
                tries["n"] += 1
                mine.info("trying")
                if tries["n"] == 1:
                    raise _FlakyError("cold cache")
                return "ok"

            @app.agent(retry=Retry(attempts=1))
            def doomed(ctx: Context) -> str:
                raise ValueError("bad input")

            good = app.run(flaky)
            bad = app.run(doomed)
        finally:
            app.close()
            mine.removeHandler(keep)
    ours = [r for r in caplog.records if r.name == "seawall.runs"]
    assert ours, "no run records"
    for record in ours:
        for name in FIELDS:
            assert hasattr(record, name), (name, record.getMessage())
    retry = next(r for r in ours if "retrying" in r.getMessage())
    assert (retry.run_id, retry.agent, retry.attempt) == (good.run_id, "flaky", 1)  # type: ignore[attr-defined]
    failed = next(r for r in ours if r.run_id == bad.run_id)  # type: ignore[attr-defined]
    assert failed.levelno == logging.WARNING
    assert failed.error_class == "clean_abort"  # type: ignore[attr-defined]
    assert "ValueError" in failed.getMessage()
    # The user's own lines inside the agent got the run's fields from the filter.
    assert [(r.run_id, r.attempt) for r in stamped] == [(good.run_id, 1), (good.run_id, 2)]  # type: ignore[attr-defined]


def test_the_filter_fills_none_outside_a_run() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    assert RunContextFilter().filter(record)
    assert all(getattr(record, name) is None for name in FIELDS)
