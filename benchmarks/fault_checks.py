"""The invariants of the fault matrix, checked from the external effect log and the ledger.

For one run, after its schedule (every fault applied, every process gone):

- **every completed step took effect**: each mutating step the journal records as completed has
  its idempotency key in the effect log; and every effect in the log has its intent in the
  journal (nothing happened that the ledger does not know about);
- **a non-idempotent call never twice**: at most one ``charge`` per step of the run;
- **idempotent duplicates only under the same key**: every ``notify`` of a step carries the same
  key (a re-issue of an in-doubt call, or the in-flight call of a stale owner, is expected and
  counted; another key is a violation);
- **no final status written by a fenced owner**: a fenced attempt never holds the run's epoch
  and attempts' epochs only grow; a succeeded run has a succeeded attempt; a stale owner
  (stalled, taken over, woken) noted its fencing on its own attempt row, returned either the
  ledger's final result or ``running`` (lease lost), and started no call after waking (only the
  one whose intent was journaled when it stopped may finish); every final status a process
  returned is the ledger's (so no stale write replaced the last owner's);
- **nothing lost**: the run ended (or waits for a person), and a failed run is in the DLQ; no
  process that was not killed on purpose died or raised, and no resumer gave up.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seawall import RunStatus
from seawall.ledger import DeadLetterQuery

if TYPE_CHECKING:
    from seawall.ledger import AttemptRecord, RunRecord, StepRecord, Store


@dataclass
class Stale:
    """An owner that was stopped past its lease and woken after another process took over.

    Attributes:
        pid: Its process id.
        woke_at: When it got SIGCONT (Unix time).
        intents: The idempotency keys the journal held when the takeover was seen: the calls in
            flight when it stopped are among them (any call it started after waking is not).
        printed: The result it printed, if it is a workload process (not a Celery worker).
        after_outage: It had lost its ledger (an outage) before it was stopped, so its attempt
            may have ended before the stop, with nothing left to be fenced.
    """

    pid: int
    woke_at: float
    intents: frozenset[str]
    printed: dict[str, Any] | None = None
    after_outage: bool = False


@dataclass
class Evidence:
    """What the matrix saw of one run besides the ledger.

    Attributes:
        run_id: The run.
        effects: The effect log's entries of the run.
        stale: The owners stalled past a takeover and woken.
        printed: The results the workload processes printed.
        failures: Processes that died or raised without being killed on purpose, one line each.
    """

    run_id: str
    effects: list[dict[str, Any]]
    stale: list[Stale] = field(default_factory=list)
    printed: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def owner_pid(owner: str | None) -> int | None:
    """The process id in a lease owner's name (``host:pid:tag``)."""
    if owner is None:
        return None
    parts = owner.split(":")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None


def check(store: Store, evidence: Evidence) -> tuple[list[str], Counter[str], str]:
    """Check the invariants of one run.

    Returns:
        The violations (one line each), the duplicates by kind, and the run's final status.
    """
    run = store.get_run(evidence.run_id)
    if run is None:
        return [f"run {evidence.run_id} is not in the ledger"], Counter(), "missing"
    steps = store.load_steps(run.run_id)
    attempts = store.list_attempts(run.run_id)
    status = run.status.value + (f"/{run.failure_cause.value}" if run.failure_cause else "")
    violations = list(evidence.failures)
    violations += _nothing_lost(store, run, evidence)
    effect_violations, duplicates = _effects(steps, evidence.effects)
    violations += effect_violations
    violations += _fencing(run, attempts)
    violations += _stale_owners(run, attempts, evidence)
    return violations, duplicates, status


def _nothing_lost(store: Store, run: RunRecord, evidence: Evidence) -> list[str]:
    found = []
    if not run.status.final and run.status is not RunStatus.AWAITING_HUMAN:
        found.append(f"nothing lost: the run is still {run.status.value} after every resume")
    if run.status is RunStatus.FAILED:
        queued = store.list_dead_letters(DeadLetterQuery(status=None, limit=1_000_000))
        if run.run_id not in {entry.run_id for entry in queued}:
            found.append("nothing lost: the run failed but is not in the DLQ")
    found.extend(
        f"nothing lost: a process reported {printed['status']} but the ledger says "
        f"{run.status.value}"
        for printed in evidence.printed
        if printed.get("status") in _FINAL and printed["status"] != run.status.value
    )
    return found


_FINAL = frozenset(status.value for status in RunStatus if status.final)


def _effects(
    steps: list[StepRecord], effects: list[dict[str, Any]]
) -> tuple[list[str], Counter[str]]:
    """Completed steps took effect; charges once; notices once or under their one key."""
    found: list[str] = []
    duplicates: Counter[str] = Counter()
    logged = {entry["key"] for entry in effects}
    journaled = {s.idempotency_key: s for s in steps if s.mutating and s.kind == "tool"}
    found.extend(
        f"completed step took effect: step {s.seq} ({s.name}, key {s.idempotency_key}) is "
        "completed in the journal but not in the effect log"
        for s in journaled.values()
        if s.status == "completed" and s.idempotency_key not in logged
    )
    for entry in effects:
        step = journaled.get(entry["key"])
        if step is None or step.name != entry["tool"]:
            found.append(
                f"completed step took effect: {entry['tool']} of step {entry['step']} (key "
                f"{entry['key']}, pid {entry['pid']}) happened with no intent in the journal"
            )
    by_step: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for entry in effects:
        by_step[entry["tool"], entry["step"]].append(entry)
    for (tool, step_no), entries in sorted(by_step.items()):
        if len(entries) == 1:
            continue
        keys = {entry["key"] for entry in entries}
        if tool == "charge":
            duplicates["charge repeated (violation)"] += len(entries) - 1
            found.append(
                f"a non-idempotent call never twice: charge of step {step_no} ran "
                f"{len(entries)} times (keys {sorted(keys)}, pids {[e['pid'] for e in entries]})"
            )
        elif len(keys) > 1:
            duplicates["notify under another key (violation)"] += len(entries) - 1
            found.append(
                f"idempotent duplicates only under the same key: notify of step {step_no} ran "
                f"under keys {sorted(keys)}"
            )
        else:
            duplicates["notify re-issued under its key"] += len(entries) - 1
    return found, duplicates


def _fencing(run: RunRecord, attempts: list[AttemptRecord]) -> list[str]:
    """No attempt fenced at the run's epoch; epochs only grow; a success is an attempt's."""
    found = [
        f"no final status written by a fenced owner: attempt {a.attempt} was fenced at epoch "
        f"{a.epoch}, yet the run's epoch is {run.epoch}"
        for a in attempts
        if a.fenced_at is not None and (a.epoch or 0) >= run.epoch
    ]
    epochs = [a.epoch or 0 for a in attempts]
    if epochs != sorted(epochs) or (epochs and epochs[-1] > run.epoch):
        found.append(
            f"no final status written by a fenced owner: attempt epochs {epochs}, run {run.epoch}"
        )
    if run.status is RunStatus.SUCCEEDED and not any(a.status == "succeeded" for a in attempts):
        found.append(
            "no final status written by a fenced owner: the run succeeded but none of its "
            f"attempts did: {[(a.attempt, a.epoch, a.status) for a in attempts]}"
        )
    return found


def _stale_owners(run: RunRecord, attempts: list[AttemptRecord], evidence: Evidence) -> list[str]:
    """A woken stale owner noticed, changed nothing, and started no new call."""
    found: list[str] = []
    for stale in evidence.stale:
        mine = [
            a for a in attempts if owner_pid(a.owner) == stale.pid and a.start_time < stale.woke_at
        ]
        if not mine:
            continue  # it was stopped before it started an attempt of its own
        last = mine[-1]
        printed = stale.printed or {}
        status, cause = printed.get("status"), printed.get("failure_cause")
        if (
            stale.printed is not None
            and status != run.status.value
            and (status != RunStatus.RUNNING.value or cause not in _INTERRUPTED)
        ):
            found.append(
                f"no final status written by a fenced owner: stale pid {stale.pid} returned "
                f"{status}/{cause} where the run is {run.status.value}"
            )
        # One that lost its ledger before it was stopped (an outage) ended its attempt then;
        # any other found, at its first write after waking, that it was fenced.
        if last.fenced_at is None and cause != "ledger_unavailable" and not stale.after_outage:
            found.append(
                f"no final status written by a fenced owner: pid {stale.pid} (attempt "
                f"{last.attempt}, epoch {last.epoch}) was taken over while stopped, yet never "
                "noted that it was fenced"
            )
        late = [e for e in evidence.effects if e["pid"] == stale.pid and e["t"] >= stale.woke_at]
        if len(late) > 1 or any(e["key"] not in stale.intents for e in late):
            found.append(
                f"a fenced owner starts no call after waking: stale pid {stale.pid} did "
                f"{[(e['tool'], e['step'], e['key']) for e in late]} after SIGCONT (intents "
                f"journaled at the takeover: {sorted(stale.intents)})"
            )
    return found


_INTERRUPTED = frozenset({"lease_lost", "ledger_unavailable"})
