"""Rows for store tests: runs, outcomes and steps built the way the runtime builds them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seawall._failures import ErrorClass, FailureCause, RunStatus
from seawall._payload import PayloadCodec, digest, pack
from seawall.ledger import NewRun, RunOutcome, StepRow, Store

if TYPE_CHECKING:
    from seawall._payload import Blob

OWNER = "host:1234"


def payload(value: Any) -> tuple[str, bytes, list[Blob]]:
    """Encode ``value`` as the runtime does: ``(hash, column, blobs)``."""
    data = PayloadCodec().dumps(value, "inputs")
    data_hash = digest(data)
    stored, blobs = pack(data, value, data_hash)
    return data_hash, stored, blobs


def new_run(
    run_id: str,
    *,
    agent: str = "agent",
    start: float = 1000.0,
    lease_expires_at: float | None = None,
    owner: str = OWNER,
    value: Any = None,
    replay_of: str | None = None,
    replay_mode: str | None = None,
) -> tuple[NewRun, list[Blob]]:
    """A run about to be created, and its input blobs."""
    data_hash, stored, blobs = payload({"run": run_id} if value is None else value)
    run = NewRun(
        run_id=run_id,
        agent=agent,
        start_time=start,
        input_hash=data_hash,
        input_column=stored,
        code_version="v1",
        owner=owner,
        lease_expires_at=start + 30 if lease_expires_at is None else lease_expires_at,
        replay_of=replay_of,
        replay_mode=replay_mode,
    )
    return run, blobs


def create(store: Store, run_id: str, **options: Any) -> None:
    """Create a run in ``store``."""
    run, blobs = new_run(run_id, **options)
    store.create_run(run, blobs)


def outcome_of(
    status: RunStatus = RunStatus.SUCCEEDED,
    *,
    error_class: ErrorClass | None = None,
    end: float = 2000.0,
    output: Any = "done",
) -> tuple[RunOutcome, list[Blob]]:
    """A run's outcome and its output blobs."""
    output_hash, stored, blobs = payload(output)
    failed = status is not RunStatus.SUCCEEDED and status is not RunStatus.AWAITING_HUMAN
    outcome = RunOutcome(
        status=status,
        end_time=end,
        output_hash=None if failed else output_hash,
        output_column=None if failed else stored,
        error_class=error_class,
        failure_cause=FailureCause.EXCEPTION if failed else None,
        error_type="ValueError" if failed else None,
        error_message="bad" if failed else None,
        error_json='{"code": "exception", "message": "bad", "type": "ValueError"}'
        if failed
        else None,
        input_tokens=10,
        output_tokens=5,
        cost_usd=0.25,
        attempts=1,
    )
    return outcome, [] if failed else blobs


def finish(store: Store, run_id: str, *args: Any, **options: Any) -> None:
    """End a run in ``store``."""
    outcome, blobs = outcome_of(*args, **options)
    store.finish_run(run_id, outcome, blobs, epoch=1)


def step(
    run_id: str,
    seq: int,
    *,
    mutating: bool = False,
    status: str = "completed",
    response: bytes | None = b"J1",
    request: Any = None,
) -> tuple[StepRow, list[Blob]]:
    """A journal step row and its request blobs."""
    request_hash, stored, blobs = payload(["tool", [seq], {}] if request is None else request)
    row: StepRow = (
        run_id,
        seq,
        1,
        "tool",
        "tool",
        1 if mutating else 0,
        f"{run_id}:{seq}",
        request_hash,
        stored,
        response,
        status,
        100.0 + seq,
        None if status == "started" else 100.5 + seq,
        None,
        None,
        1,
    )
    return row, blobs
