"""Runs executed by real Celery worker processes (real Redis / RabbitMQ, a shared ledger)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from seawall import (
    BrokerUnavailableError,
    ConfigurationError,
    ErrorClass,
    FailureCause,
    RunNotFoundError,
    RunStatus,
    Seawall,
    WaitTimeoutError,
)
from seawall.integrations.celery import CeleryExecutor

from .celery_fleet import Fleet, wait_for

pytestmark = pytest.mark.slow
WAIT = 60.0


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, redis_ledger: tuple[str, str]
) -> Iterator[Fleet]:
    """Two workers on Redis sharing one ledger with the test process."""
    ledger, broker = redis_ledger
    fleet = Fleet(tmp_path_factory.mktemp("fleet"), ledger, broker)
    try:
        fleet.start("a", "b")
        yield fleet
    finally:
        fleet.close()


def test_a_submitted_run_executes_in_a_worker(fleet: Fleet) -> None:
    """app.submit hands the run to a worker; the handle reads its result from the ledger."""
    handle = fleet.app.submit("checkout", order="o-1")
    result = handle.result(timeout=WAIT)
    assert RunStatus.SUCCEEDED == result.status
    assert os.getpid() != result.output["worker_pid"]
    assert fleet.owner_of(result.output["worker_pid"]) in ("a", "b")
    assert ["charge", "ship"] == fleet.effects_of("o-1")
    assert [RunStatus.SUCCEEDED] == [fleet.app.ledger.run(handle.run_id).status]


def test_app_run_waits_for_the_worker(fleet: Fleet) -> None:
    """app.run with the Celery executor blocks until a worker finished the run."""
    result = fleet.app.run("checkout", order="o-2")
    assert RunStatus.SUCCEEDED == result.status
    assert os.getpid() != result.output["worker_pid"]
    assert 1 == len(result.attempts)


def test_graph_nodes_execute_in_workers(fleet: Fleet) -> None:
    """Each node of a graph run is a Celery task; the coordinator here collects the outputs."""
    result = fleet.app.run(fleet.app.graphs["double_then_add"], x=20)
    assert RunStatus.SUCCEEDED == result.status
    assert {"double": 40, "add_one": 41} == result.output
    for node in result.nodes.values():
        [attempt] = node.attempts
        assert f":{os.getpid()}:" not in attempt.owner


def test_a_worker_without_the_agent_records_a_clear_error(fleet: Fleet) -> None:
    """A run naming an agent the workers lack fails with an error saying so, in the DLQ."""

    @fleet.app.agent
    def only_in_the_submitter(ctx: object) -> str:
        return "never runs"

    result = fleet.app.submit("only_in_the_submitter").result(timeout=WAIT)
    assert RunStatus.FAILED == result.status
    assert ErrorClass.CLEAN_ABORT == result.error_class
    assert result.error is not None
    assert "ExecutorError" == result.error["type"]
    assert "has no agent named 'only_in_the_submitter' registered" in result.error["message"]
    assert [result.run_id] == [
        entry.run_id for entry in fleet.app.dlq.list(agent="only_in_the_submitter")
    ]


def test_unknown_run_ids(fleet: Fleet) -> None:
    """Waiting for an unknown id raises; a worker sent one logs it and keeps working."""
    with pytest.raises(RunNotFoundError, match="no run 'no-such-run'"):
        fleet.app.wait("no-such-run", timeout=1)
    executor = fleet.app.executor
    assert isinstance(executor, CeleryExecutor)
    executor.send("no-such-run")
    assert RunStatus.SUCCEEDED == fleet.app.run("checkout", order="o-3").status
    fleet.wait_for_log("run no-such-run is not in the ledger")


def test_a_duplicate_delivery_does_not_run_a_leased_run_twice(fleet: Fleet, tmp_path: Path) -> None:
    """A second delivery of a run held by a live worker defers; each side effect happens once."""
    hold = tmp_path / "hold"
    hold.touch()
    handle = fleet.app.submit("checkout", order="o-dup", hold=str(hold))
    wait_for(Path(f"{hold}.reached"))
    executor = fleet.app.executor
    assert isinstance(executor, CeleryExecutor)
    executor.send(handle.run_id)  # what a broker's redelivery looks like to a worker
    with pytest.raises(WaitTimeoutError):
        handle.result(timeout=0.5)
    hold.unlink()
    result = handle.result(timeout=WAIT)
    assert RunStatus.SUCCEEDED == result.status
    assert 1 == len(result.attempts)
    assert ["charge", "ship"] == fleet.effects_of("o-dup")
    fleet.wait_for_log(f"run {handle.run_id} is leased by")


def test_a_run_whose_message_was_lost_is_sent_again_by_a_worker(fleet: Fleet) -> None:
    """A pending run nobody received (a lost message) is re-sent by the workers' sweep."""
    spec = fleet.app.runtime.registry.agent("checkout")
    executor = fleet.app.executor
    assert isinstance(executor, CeleryExecutor)
    run_id, _ = fleet.app.runtime.record_run(  # recorded as the executor does, never sent
        spec, {"order": "o-lost"}, queued=True, route=executor.route
    )
    result = fleet.app.wait(run_id, timeout=WAIT)
    assert RunStatus.SUCCEEDED == result.status
    assert ["charge", "ship"] == fleet.effects_of("o-lost")
    fleet.wait_for_log(f"sent again: {run_id}")


@pytest.mark.crash
def test_a_sigkilled_pool_process_run_is_redelivered_and_resumed_after_its_lease(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Kill only the pool process: Celery redelivers at once, the run resumes once its lease lapses."""
    hold = tmp_path / "hold"
    hold.touch()
    handle = fleet.app.submit("checkout", order="o-child", hold=str(hold))
    wait_for(Path(f"{hold}.reached"))
    [first] = fleet.app.ledger.attempts(handle.run_id)
    os.kill(int(first.owner.split(":")[1]), signal.SIGKILL)
    hold.unlink()
    result = handle.result(timeout=WAIT)
    assert RunStatus.SUCCEEDED == result.status
    assert ["charge", "ship"] == fleet.effects_of("o-child")
    crashed, finished = result.attempts
    assert FailureCause.CRASHED == crashed.failure_cause
    assert crashed.owner != finished.owner


def test_rabbitmq_broker(tmp_path: Path, rabbitmq_url: str, redis_ledger: tuple[str, str]) -> None:
    """The same executor works with a RabbitMQ broker URL."""
    ledger, _ = redis_ledger
    fleet = Fleet(tmp_path, ledger, rabbitmq_url)
    try:
        fleet.start("a")
        result = fleet.app.submit("checkout", order="o-amqp").result(timeout=WAIT)
        assert RunStatus.SUCCEEDED == result.status
        assert "a" == fleet.owner_of(result.output["worker_pid"])
        assert ["charge", "ship"] == fleet.effects_of("o-amqp")
    finally:
        fleet.close()


def test_an_unreachable_broker_fails_the_submit_clearly(celery_ledger: str) -> None:
    """Submitting with the broker down raises; the run is recorded failed and in the DLQ."""
    celery_app = Celery("down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    app = Seawall(celery_ledger, lease=1.5, executor=CeleryExecutor(celery_app))
    try:

        @app.agent
        def greet(ctx: object, name: str) -> str:
            return f"hello {name}"

        with pytest.raises(BrokerUnavailableError, match="is unreachable") as caught:
            app.submit(greet, name="x")
        run = app.ledger.run(caught.value.run_id)
        assert RunStatus.FAILED == run.status
        assert "BrokerUnavailableError" == (run.error or {}).get("type")
        assert [run.run_id] == [entry.run_id for entry in app.dlq.list(agent="greet")]
    finally:
        app.close()
        celery_app.close()


def test_a_visibility_timeout_shorter_than_the_lease_is_refused(celery_ledger: str) -> None:
    """The broker must not hand a message on while its run's lease can still be renewed."""
    celery_app = Celery("short", broker="redis://127.0.0.1:1/0", set_as_current=False)
    celery_app.conf.broker_transport_options = {"visibility_timeout": 5}
    with pytest.raises(ConfigurationError, match="must be longer than the Seawall lease"):
        Seawall(celery_ledger, lease=30, executor=CeleryExecutor(celery_app))
    celery_app.close()
