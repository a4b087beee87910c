"""Settling a run: committing its artifacts, or compensating its side effects.

Commit protocol (each step survives a SIGKILL before or after it):

1. seal: check the staged files and write their manifest into the staging folder;
2. intent: record the output and the manifest in the ledger (phase ``committing``), durably;
3. publish: rename the folder into place (local) or upload files then the manifest (fsspec);
4. finish: the run row becomes ``succeeded`` and its artifacts ``committed_at``.

A resumer that finds a run in phase ``committing`` rolls forward (the destination already has
the manifest, or the sealed staging folder is still there to publish) or rolls back (neither:
partial uploads are removed, the commit record is dropped and the agent runs again).

Compensation (sagas): when a run ends ``partial_write`` for good, the compensations of its
completed mutating calls run in reverse order, each journaled (intent before, outcome after),
each at most once: one found in flight after a crash is re-issued only if it can dedupe (it takes
an ``idempotency_key``, or its tool is idempotent); otherwise, and when one fails, a hand-off to a
person is opened instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seawall import _faults, _payload, _timing
from seawall._failures import ErrorClass
from seawall.artifacts._publish import destination_for
from seawall.artifacts._staging import Manifest, remove_tree
from seawall.errors import ConfigurationError
from seawall.ledger import HandOffRecord
from seawall.observe.logs import run_fields

if TYPE_CHECKING:
    from seawall._payload import Blob
    from seawall.artifacts._staging import StagingArea
    from seawall.ledger import RunRecord, StepRecord
    from seawall.runtime.services import Runtime

logger = logging.getLogger("seawall.settle")


def output_hash_with(output_hash: str, manifest: Manifest) -> str:
    """The run's output hash when it has artifacts: it covers the output and the manifest."""
    body = {"artifacts": manifest.as_list(), "output": output_hash}
    return _payload.digest(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


async def commit(
    rt: Runtime,
    run_id: str,
    attempt: int,
    staging: StagingArea,
    output_hash: str,
    output_column: bytes,
    output_blobs: list[Blob],
    *,
    epoch: int,
) -> str:
    """Seal, record and publish a run's artifacts; return the output hash covering them.

    Raises:
        ArtifactError: A staged file cannot be committed; nothing became visible.
    """
    destination = rt.destination
    if destination is None:
        raise ConfigurationError("artifacts were staged but the app has no destination")
    manifest = await asyncio.to_thread(staging.seal, sync=rt.power)
    _faults.point("commit.sealed")
    combined = output_hash_with(output_hash, manifest)
    record = {
        "attempt": attempt,
        "destination": destination.url,
        "staging": str(staging.dir),
        "manifest": manifest.as_list(),
    }
    await rt.io.run(
        rt.store.begin_commit,
        run_id,
        output_hash=combined,
        output_column=output_column,
        blobs=output_blobs,
        commit_json=json.dumps(record, sort_keys=True),
        artifacts=[(e.name, e.size, e.sha256) for e in manifest.entries],
        epoch=epoch,
    )
    _faults.point("commit.intent")
    try:
        await asyncio.to_thread(destination.publish, run_id, staging.dir, manifest)
    except BaseException:
        destination.remove_partial(run_id)
        await rt.io.run(rt.store.abort_commit, run_id, epoch=epoch)
        raise
    _faults.point("commit.published")
    return combined


async def roll_forward(rt: Runtime, run: RunRecord, epoch: int) -> bool:
    """Finish or undo the interrupted commit of ``run``; True when its artifacts are published."""
    raw = await rt.io.run(rt.store.get_commit, run.run_id)
    if raw is None:
        return False
    record = json.loads(raw)
    destination = destination_for(record["destination"], sync=rt.power)
    manifest = Manifest.from_json(
        json.dumps({"run_id": run.run_id, "artifacts": record["manifest"]}).encode()
    )
    staging = Path(record["staging"])
    if destination.manifest(run.run_id) == manifest:
        _drop_staging(staging)
        return True
    sealed = staging / ".seawall-manifest.json"
    if sealed.exists() and Manifest.from_json(sealed.read_bytes()) == manifest:
        await asyncio.to_thread(destination.publish, run.run_id, staging, manifest)
        _drop_staging(staging)
        return True
    destination.remove_partial(run.run_id)
    await rt.io.run(rt.store.abort_commit, run.run_id, epoch=epoch)
    _drop_staging(staging)
    logger.warning(
        "run %s: its interrupted commit could not be finished (staging gone); rerunning the agent",
        run.run_id,
        extra=run_fields(run.run_id, run.agent, run.attempts),
    )
    return False


def _drop_staging(staging: Path) -> None:
    """Remove an attempt's staging folder, and its run's folder once empty."""
    remove_tree(staging)
    with contextlib.suppress(OSError):
        staging.parent.rmdir()


async def compensate(rt: Runtime, run_id: str, epoch: int) -> None:
    """Run the compensations of ``run_id``'s completed mutating steps, newest first, once each."""
    store, io = rt.store, rt.io
    done = {c.seq: c for c in await io.run(store.list_compensations, run_id)}
    steps = [s for s in await io.run(store.load_steps, run_id) if s.kind == "tool" and s.mutating]
    for step in sorted(steps, key=lambda s: s.seq, reverse=True):
        if step.status != "completed":
            continue
        spec = rt.registry.tools.get(step.name)
        if spec is None or spec.compensate is None:
            if spec is None:
                await _handoff(
                    rt,
                    run_id,
                    epoch,
                    "compensation_unavailable",
                    f"step {step.seq} ({step.name}) needs undoing but the tool is not registered "
                    "in this process, so its compensation cannot run",
                    {"step": step.seq, "tool": step.name},
                )
            continue
        previous = done.get(step.seq)
        if previous is not None and previous.status in ("completed", "failed"):
            continue
        key = f"{step.idempotency_key or f'{run_id}:{step.seq}'}:undo"
        dedupes = spec.idempotent or _accepts_key(spec.compensate)
        if previous is not None and not dedupes:
            await _ended(
                rt,
                run_id,
                epoch,
                step,
                previous.tries,
                ("InDoubt", "in flight when its process died; it cannot dedupe, so not re-run"),
            )
            await _handoff(
                rt,
                run_id,
                epoch,
                "compensation_in_doubt",
                f"the compensation of step {step.seq} ({step.name}) was in flight when its "
                "process died; it takes no idempotency_key, so Seawall will not run it again. "
                "Check whether the undo happened",
                {"step": step.seq, "tool": step.name, "idempotency_key": key},
            )
            continue
        await _run_one(rt, run_id, epoch, step, spec.compensate, spec.retry, key)


async def _run_one(
    rt: Runtime, run_id: str, epoch: int, step: StepRecord, undo: Any, retry: Any, key: str
) -> None:
    store, io = rt.store, rt.io
    fetch = store.get_blobs
    _, args, kwargs = _payload.unpack(step.request, fetch)
    result = None if step.response is None else _payload.unpack(step.response, fetch)
    kwargs = {k: v for k, v in kwargs.items() if k != "idempotency_key"}
    if _accepts_key(undo):
        kwargs["idempotency_key"] = key
    start = time.time()
    await io.run(store.start_compensation, run_id, step.seq, step.name, key, start, epoch=epoch)
    _faults.point(f"compensation.started.{step.seq}")
    tries = 1
    while True:
        try:
            if inspect.iscoroutinefunction(undo):
                await undo(result, *args, **kwargs)
            else:
                await asyncio.to_thread(functools.partial(undo, result, *args, **kwargs))
            break
        except Exception as exc:
            decision = retry.decide(tries, exc, time.time() - start)
            if not decision.retry:
                await _ended(rt, run_id, epoch, step, tries, (type(exc).__name__, str(exc)))
                await _handoff(
                    rt,
                    run_id,
                    epoch,
                    "compensation_failed",
                    f"the compensation of step {step.seq} ({step.name}) failed after {tries} "
                    f"tries ({type(exc).__name__}: {exc}); undo it by hand",
                    {"step": step.seq, "tool": step.name, "idempotency_key": key},
                )
                return
            await _timing.asleep(decision.delay)
            tries += 1
    _faults.point(f"compensation.done.{step.seq}")
    await _ended(rt, run_id, epoch, step, tries, None)


async def _ended(
    rt: Runtime,
    run_id: str,
    epoch: int,
    step: StepRecord,
    tries: int,
    error: tuple[str, str] | None,
) -> None:
    """Record how the compensation of ``step`` ended: completed, or failed with ``error``."""
    await rt.io.run(
        rt.store.finish_compensation,
        run_id,
        step.seq,
        status="completed" if error is None else "failed",
        end_time=time.time(),
        tries=tries,
        error_type=None if error is None else error[0],
        error_message=None if error is None else error[1][:2000],
        epoch=epoch,
    )


async def needs_compensation(rt: Runtime, error_class: ErrorClass | None, run_id: str) -> bool:
    """Whether a run failing with ``error_class`` has completed steps with compensations."""
    if error_class is not ErrorClass.PARTIAL_WRITE:
        return False
    return any(
        s.kind == "tool"
        and s.mutating
        and s.status == "completed"
        and (s.name not in rt.registry.tools or rt.registry.tools[s.name].compensate is not None)
        for s in await rt.io.run(rt.store.load_steps, run_id)
    )


async def _handoff(
    rt: Runtime, run_id: str, epoch: int, kind: str, reason: str, subject: Any
) -> None:
    handoff = HandOffRecord(
        handoff_id=uuid.uuid4().hex,
        run_id=run_id,
        kind=kind,
        reason=reason,
        subject=subject,
        status="open",
        created_at=time.time(),
    )
    await rt.io.run(rt.store.open_handoff, handoff, epoch=epoch)
    run = await rt.io.run(rt.store.get_run, run_id)
    rt.monitor.handoff_opened(handoff, None if run is None else run.agent)
    logger.warning(
        "run %s: hand-off opened (%s): %s", run_id, kind, reason, extra=run_fields(run_id)
    )
    traced = rt.telemetry.active.get(run_id)
    if traced is not None:
        traced.handoff(handoff.handoff_id, kind, reason)


@functools.cache
def _accepts_key(fn: Any) -> bool:
    try:
        parameter = inspect.signature(fn).parameters.get("idempotency_key")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
