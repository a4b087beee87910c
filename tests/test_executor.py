"""The executor seam with the default local executor: submit, handles, waiting, taking."""

from __future__ import annotations

import threading

import pytest

from seawall import (
    Context,
    ExecutorError,
    LocalExecutor,
    RunNotFoundError,
    RunStatus,
    Seawall,
    WaitTimeoutError,
)


def test_the_local_executor_is_the_default(app: Seawall) -> None:
    """An app built without an executor runs everything in this process."""
    assert isinstance(app.executor, LocalExecutor)


def test_submit_runs_in_the_background_and_the_handle_waits(app: Seawall) -> None:
    """app.submit returns at once; handle.result waits for the recorded result."""
    release = threading.Event()

    @app.agent
    def slow(ctx: Context, x: int) -> int:
        release.wait(10)
        return x * 3

    handle = app.submit(slow, x=4)
    with pytest.raises(WaitTimeoutError, match="had not ended after"):
        handle.result(timeout=0.05)
    assert not handle.done()
    release.set()
    result = handle.result(timeout=10)
    assert RunStatus.SUCCEEDED == result.status
    assert 12 == result.output
    assert handle.done()
    assert RunStatus.SUCCEEDED == app.wait(handle.run_id).status


def test_wait_on_an_unknown_run_raises(app: Seawall) -> None:
    """Waiting for an id the ledger does not know fails at once."""
    with pytest.raises(RunNotFoundError):
        app.wait("0" * 32, timeout=1)


def test_take_runs_a_queued_run_once(app: Seawall) -> None:
    """A pending run is claimed and executed by take(); a second take serves the result."""
    calls: list[int] = []

    @app.agent
    def count(ctx: Context, x: int) -> int:
        calls.append(x)
        return x

    spec = app.runtime.registry.agent(count)
    run_id, _ = app.runtime.record_run(spec, {"x": 7}, queued=True)
    assert RunStatus.PENDING == app.ledger.run(run_id).status
    assert [] == app.store.expired_runs(10**12, 10)
    first = app.take(run_id)
    again = app.take(run_id)
    assert first is not None
    assert again is not None
    assert (RunStatus.SUCCEEDED, 7) == (first.status, first.output)
    assert (RunStatus.SUCCEEDED, 7) == (again.status, again.output)
    assert [7] == calls


def test_take_leaves_a_run_leased_by_a_live_owner(app: Seawall, ledger_url: str) -> None:
    """take() returns None for a run another process holds, and does not run it."""

    @app.agent
    def never(ctx: Context) -> None:
        raise AssertionError("must not run")

    with Seawall(ledger_url, lease=30) as other:
        other.agent(never)
        run_id, _ = other.runtime.record_run(other.runtime.registry.agent(never), {})
        assert app.take(run_id) is None
        assert RunStatus.RUNNING == app.ledger.run(run_id).status


def test_take_records_a_missing_agent_as_a_failure(app: Seawall, ledger_url: str) -> None:
    """A run whose agent this process lacks ends failed with an ExecutorError naming it."""
    with Seawall(ledger_url) as other:

        @other.agent
        def elsewhere(ctx: Context) -> int:
            return 1

        run_id, _ = other.runtime.record_run(
            other.runtime.registry.agent(elsewhere), {}, queued=True
        )
    result = app.take(run_id)
    assert result is not None
    assert RunStatus.FAILED == result.status
    assert ExecutorError.code == (result.error or {}).get("code")
    assert "no agent named 'elsewhere'" in (result.error or {}).get("message", "")
