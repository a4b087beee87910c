"""Takeover without the broker: Celery on Redis at its default visibility timeout (an hour).

A run whose worker was SIGKILLed whole, and a run whose message a Redis restart dropped, are
both finished by the other workers within about two leases: the broker never redelivers them.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest

from seawall import FailureCause, RunStatus, Seawall
from seawall.integrations.celery import CeleryExecutor
from tests.servers import ThrowawayRedis
from tests.services import REDIS_URL, require

from .celery_fleet import Fleet, purge, wait_for
from .celery_worker import build

pytestmark = pytest.mark.slow
FAULT_BOUND = 30.0
"""Seconds after a fault by which every run must have finished (the broker would take 3600)."""
LOST = re.compile(r"(\d+) pending run\(s\) whose message the broker lost")


def executor_of(app: Seawall) -> CeleryExecutor:
    """The Celery executor of an app of these tests."""
    executor = app.executor
    assert isinstance(executor, CeleryExecutor)
    return executor


def test_a_sweep_resends_a_lost_message_once_two_sweeps_agree(
    tmp_path: Path, celery_ledger: str
) -> None:
    """Unclaimed runs beyond the queue's length are re-sent on the second sweep, and once."""
    require("redis")
    tag = uuid.uuid4().hex[:10]
    queue, prefix = f"seawall-test-{tag}", f"seawall-test-{tag}:"
    celery_app, app = build(celery_ledger, REDIS_URL, queue, prefix, tmp_path / "effects")
    try:
        executor = executor_of(app)
        spec = app.runtime.registry.agent("double")
        lost = [
            app.runtime.record_run(spec, {"x": i}, queued=True, route=executor.route)[0]
            for i in range(3)
        ]
        sent = app.submit("double", x=9).run_id
        now = time.time()
        first = app.runtime.takeover.sweep(now)
        assert ((), tuple(lost)) == (first.lost, first.suspected)
        second = app.runtime.takeover.sweep(now + app.runtime.takeover.every)
        assert (tuple(lost), ()) == (second.lost, second.suspected)
        third = app.runtime.takeover.sweep(now + 2 * app.runtime.takeover.every)
        assert ((), ()) == (third.lost, third.suspected)
        assert 4 == executor.queued()
        assert [RunStatus.PENDING] * 4 == [app.ledger.run(r).status for r in [*lost, sent]]
    finally:
        app.close()
        purge(celery_app, queue, prefix)
        celery_app.close()


def test_resume_takes_the_runs_whose_message_was_lost_and_leaves_the_queued_ones(
    tmp_path: Path, celery_ledger: str
) -> None:
    """seawall resume executes here the unclaimed runs beyond what the queue holds."""
    require("redis")
    tag = uuid.uuid4().hex[:10]
    queue, prefix = f"seawall-test-{tag}", f"seawall-test-{tag}:"
    celery_app, app = build(celery_ledger, REDIS_URL, queue, prefix, tmp_path / "effects")
    try:
        route = executor_of(app).route
        spec = app.runtime.registry.agent("double")
        lost = [app.runtime.record_run(spec, {"x": i}, queued=True, route=route)[0] for i in (1, 2)]
        queued = app.submit("double", x=3).run_id
        results = app.resume()
        assert sorted(lost) == sorted(r.run_id for r in results)
        assert [2, 4] == sorted(r.output for r in results)
        assert RunStatus.PENDING == app.ledger.run(queued).status
    finally:
        app.close()
        purge(celery_app, queue, prefix)
        celery_app.close()


@pytest.mark.crash
def test_a_whole_worker_sigkill_is_taken_over_at_the_default_visibility_timeout(
    tmp_path: Path, celery_ledger: str
) -> None:
    """SIGKILL a worker with its pool mid-run: every run ends within 30 s, each effect once."""
    require("redis")
    fleet = Fleet(tmp_path, celery_ledger, REDIS_URL, visibility=None)
    try:
        fleet.start("a", "b")
        hold = tmp_path / "hold"
        hold.touch()
        first = fleet.app.submit("checkout", order="k-0", hold=str(hold))
        wait_for(Path(f"{hold}.reached"))
        [attempt] = fleet.app.ledger.attempts(first.run_id)
        victim = fleet.owner_of(int(attempt.owner.split(":")[1]))
        handles = [first] + [fleet.app.submit("checkout", order=f"k-{i}") for i in range(1, 5)]
        fault = time.time()
        fleet.kill(victim)
        hold.unlink()
        results = [handle.result(timeout=FAULT_BOUND) for handle in handles]
        assert [RunStatus.SUCCEEDED] * 5 == [result.status for result in results]
        finished = max(fleet.app.ledger.run(r.run_id).end_time or 0.0 for r in results)
        assert finished - fault < FAULT_BOUND
        assert [["charge", "ship"]] * 5 == [fleet.effects_of(f"k-{i}") for i in range(5)]
        keys = fleet.effect_keys()
        assert sorted(set(keys)) == sorted(keys)
        assert [f"{results[0].run_id}:1", f"{results[0].run_id}:2"] == [
            key for key in keys if key.startswith(results[0].run_id)
        ]
        crashed, resumed = results[0].attempts
        assert FailureCause.CRASHED == crashed.failure_cause
        survivor = "b" if victim == "a" else "a"
        assert survivor == fleet.owner_of(results[0].output["worker_pid"])
        assert resumed.owner != crashed.owner
    finally:
        fleet.close()


@pytest.mark.crash
def test_a_broker_restart_with_a_backlog_is_recovered_with_one_resend_per_lost_message(
    tmp_path: Path, celery_ledger: str, throwaway_redis: ThrowawayRedis
) -> None:
    """Redis restarts empty with 20 queued runs: each is re-sent once and executed once."""
    fleet = Fleet(tmp_path, celery_ledger, throwaway_redis.url, visibility=None)
    try:
        fleet.start("a", "b")
        holds = [tmp_path / "hold-a", tmp_path / "hold-b"]
        busy = []
        for n, hold in enumerate(holds):
            hold.touch()
            busy.append(fleet.app.submit("checkout", order=f"busy-{n}", hold=str(hold)))
            wait_for(Path(f"{hold}.reached"))
        backlog = [fleet.app.submit("checkout", order=f"q-{i}") for i in range(20)]
        lost = executor_of(fleet.app).queued()
        fault = time.time()
        throwaway_redis.restart()
        for hold in holds:
            hold.unlink()
        results = [handle.result(timeout=FAULT_BOUND) for handle in busy + backlog]
        assert [RunStatus.SUCCEEDED] * 22 == [result.status for result in results]
        finished = max(fleet.app.ledger.run(r.run_id).end_time or 0.0 for r in results)
        assert finished - fault < FAULT_BOUND
        assert [1] * 22 == [len(result.attempts) for result in results]
        assert [["charge", "ship"]] * 20 == [fleet.effects_of(f"q-{i}") for i in range(20)]
        keys = fleet.effect_keys()
        assert (44, 44) == (len(keys), len(set(keys)))
        resent = sum(
            int(found)
            for log in tmp_path.glob("worker-*.log")
            for found in LOST.findall(log.read_text(errors="replace"))
        )
        assert 20 == lost
        assert lost <= resent <= lost + 2
    finally:
        fleet.close()
