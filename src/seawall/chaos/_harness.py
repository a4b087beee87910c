"""The chaos harness: a workload under a fault plan, in child processes, checked afterwards.

The workload runs in child processes that are restarted after injected crashes and resume
what was left; then a report says what was injected and how it was recovered, and checks the
invariants:

- nothing lost: every run of the session ended (or waits for a person) and every failed run is
  in the dead-letter queue;
- no duplicate side effects: no mutating call ran twice with the same idempotency key (tools
  that take one; idempotent tools may be re-issued by design);
- no partial artifacts visible: a run's artifacts are visible at the destination exactly when it
  succeeded, all of them, matching their manifest;
- no unverified commits: every succeeded run of an agent with verifiers passed them (or was
  approved by a person);
- one owner at a time: an owner found fenced (stalled past its lease while another process took
  its run over) never held its run's current epoch, so it wrote nothing after the takeover.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seawall._failures import FailureCause, RunStatus
from seawall._payload import digest
from seawall.chaos._inject import install
from seawall.chaos._interrupt import Takeovers, prepare_outages, resume_interrupted
from seawall.chaos._plan import CLASS_OF, FaultPlan
from seawall.chaos._workload import load_target, log_mutations

if TYPE_CHECKING:
    from seawall._app import Seawall
    from seawall.ledger import AttemptRecord, RunRecord


@dataclass
class ChaosReport:
    """What a chaos session did and found."""

    runs: int
    restarts: int
    statuses: dict[str, int] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    invariants: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every invariant holds."""
        return all(check["ok"] for check in self.invariants.values())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"ok": self.ok, **asdict(self)}


def _session_runs(app: Seawall, name: str, since: float) -> list[RunRecord]:
    return [
        r
        for r in app.ledger.runs(agent=name, since=since, limit=1_000_000)
        if r.parent_run_id is None and r.replay_of is None
    ]


def child_main(argv: list[str]) -> int:
    """Entry of one child process: install the plan, resume what a crash left, run the rest.

    A run whose attempt lost its ledger (a ``ledger_outage``) is resumed here once the ledger
    is back; one taken over by another process (a ``stall``) is left to it.
    """
    spec, plan_path, log, runs, since, inputs, lease = argv
    plan = FaultPlan.load(plan_path) if plan_path else FaultPlan()
    if any(fault.kind == "ledger_outage" for fault in plan.faults):
        prepare_outages()  # before the app's ledger opens its first connection
    app, target, name = load_target(spec)
    app.runtime.leases.duration = float(lease)
    log_mutations(app, Path(log))
    injector = install(app, plan, log)
    app.resume()
    started = len(_session_runs(app, name, float(since)))
    given = json.loads(inputs)
    choices = given if isinstance(given, list) else [given]
    for index in range(started, int(runs)):
        result = app.run(target, **choices[index % len(choices)])
        if result.failure_cause is FailureCause.LEDGER_UNAVAILABLE and not result.status.final:
            resume_interrupted(app, result.run_id, injector.outage)
    app.close()
    return 0


def run_session(
    spec: str,
    plan_path: str | None,
    *,
    runs: int,
    workdir: Path,
    inputs: dict[str, Any] | list[dict[str, Any]] | None = None,
    lease: float = 1.0,
    max_restarts: int | None = None,
    progress: Any = None,
) -> ChaosReport:
    """Run ``runs`` runs of the target under the plan, restarting crashed children; report.

    ``inputs`` is one dict for every run, or a list used in turn (run ``i`` gets item
    ``i % len``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"chaos-{int(time.time() * 1000)}.jsonl"
    since = time.time()
    restarts = 0
    limit = max_restarts if max_restarts is not None else runs + 10
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")]),
    }
    args = [
        spec,
        plan_path or "",
        str(log),
        str(runs),
        repr(since),
        json.dumps(inputs or {}),
        str(lease),
    ]
    takeovers = Takeovers(spec, log, lease, env, progress)
    errors = log.with_suffix(".stderr")
    try:
        while True:
            with errors.open("wb") as stderr:
                child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    [sys.executable, "-m", "seawall.chaos", "--child", *args],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
                code = takeovers.watch(child)
            if code == 0:
                break
            if code != -signal.SIGKILL or restarts >= limit:
                message = errors.read_text(errors="replace").strip().splitlines()[-1:]
                raise RuntimeError(
                    f"chaos child exited with {code}: {(message or ['(no output)'])[0]}"
                )
            restarts += 1
            if progress is not None:
                progress(f"process killed by an injected crash; restart {restarts}, resuming")
            time.sleep(lease * 1.3)
    finally:
        takeovers.finish()
    return check(spec, log, since, restarts)


def check(spec: str, log: Path, since: float, restarts: int) -> ChaosReport:
    """Read the session's ledger and log; attribute faults and check the invariants."""
    # The app belongs to the imported module (and may be in use by the caller): not closed here.
    app, _, name = load_target(spec)
    entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    top = _session_runs(app, name, since)
    family = list(top)
    for run in top:
        family.extend(app.ledger.runs(parent_run_id=run.run_id, limit=100_000))
    statuses: dict[str, int] = {}
    for run in top:
        statuses[run.status.value] = statuses.get(run.status.value, 0) + 1
    report = ChaosReport(runs=len(top), restarts=restarts, statuses=statuses)
    report.faults = [_attribute(app, entry) for entry in entries if entry.get("event") == "fault"]
    report.invariants = {
        "nothing lost": _nothing_lost(app, family),
        "no duplicate side effects": _no_duplicates(app, entries),
        "no partial artifacts visible": _no_partial_artifacts(app, family),
        "no unverified commits": _no_unverified(app, family),
        "one owner at a time": _one_owner(app, family),
    }
    return report


def _attribute(app: Seawall, entry: dict[str, Any]) -> dict[str, Any]:
    run_id = entry.get("run_id")
    run = app.store.get_run(run_id) if run_id else None
    recovery = "-"
    observed = None
    if run is not None:
        observed = None if run.error_class is None else run.error_class.value
        attempts = app.store.list_attempts(run.run_id)
        if attempts and attempts[0].error_class is not None and observed is None:
            observed = attempts[0].error_class.value
        recovery = _interruption(entry["kind"], attempts) or _recovery(
            app, entry["kind"], run, len(attempts)
        )
    return {
        "target": entry["target"],
        "kind": entry["kind"],
        "call": entry["call"],
        "run_id": run_id,
        "class": CLASS_OF[entry["kind"]],
        "observed_class": observed,
        "recovery": recovery,
        "final_status": None if run is None else run.status.value,
    }


def _interruption(kind: str, attempts: list[AttemptRecord]) -> str | None:
    """How a stall or a ledger outage was recovered (``None`` for other kinds)."""
    if kind == "stall":
        if any(a.fenced_at is not None for a in attempts):
            return "fenced; another process took the run over"
        return "not taken over; the stalled process went on"
    if kind == "ledger_outage":
        if len(attempts) > 1:
            return "interrupted; resumed once the ledger was back"
        return "absorbed; the ledger came back within the wait"
    return None


def _recovery(app: Seawall, kind: str, run: RunRecord, attempts: int) -> str:  # noqa: PLR0911 - one answer per outcome
    status = run.status
    if status is RunStatus.QUARANTINED:
        return "quarantined"
    if status is RunStatus.AWAITING_HUMAN or app.store.list_handoffs(run_id=run.run_id):
        return "handed off"
    if app.store.list_compensations(run.run_id):
        return "compensated"
    if (
        kind in ("crash", "crash_after_effect", "partial_artifacts")
        and status is RunStatus.SUCCEEDED
    ):
        return (
            "rolled back and resumed" if kind == "partial_artifacts" else "resumed from the journal"
        )
    if status is RunStatus.SUCCEEDED:
        return "retried" if attempts > 1 or kind in ("exception", "timeout") else "absorbed"
    if run.parent_run_id is not None and app.ledger.runs(
        parent_run_id=run.parent_run_id, status="skipped"
    ):
        return "contained"
    return f"ended {status.value} (not committed)"


def _one_owner(app: Seawall, runs: list[RunRecord]) -> dict[str, Any]:
    """No fenced attempt holds its run's epoch (a stale owner wrote nothing after a takeover)."""
    problems = []
    fenced = 0
    for run in runs:
        for attempt in app.store.list_attempts(run.run_id):
            if attempt.fenced_at is None:
                continue
            fenced += 1
            if (attempt.epoch or 0) >= run.epoch:
                problems.append(
                    f"{run.run_id}: attempt {attempt.attempt} was fenced at epoch "
                    f"{attempt.epoch}, the run's epoch"
                )
    return {
        "ok": not problems,
        "problems": problems,
        "fenced_attempts": fenced,
        "checked": len(runs),
    }


def _nothing_lost(app: Seawall, runs: list[RunRecord]) -> dict[str, Any]:
    open_runs = [
        r.run_id for r in runs if not r.status.final and r.status is not RunStatus.AWAITING_HUMAN
    ]
    failed = {r.run_id for r in runs if r.status is RunStatus.FAILED}
    queued = {e.run_id for e in app.dlq.list(status=None, limit=1_000_000)}
    missing = sorted(failed - queued)
    return {
        "ok": not open_runs and not missing,
        "unfinished": open_runs,
        "failed_not_in_dlq": missing,
        "checked": len(runs),
    }


def _no_duplicates(app: Seawall, entries: list[dict[str, Any]]) -> dict[str, Any]:
    seen: dict[tuple[str, str], int] = {}
    unchecked = 0
    for entry in entries:
        if entry.get("event") != "mutation":
            continue
        if entry["key"] is None:
            unchecked += 1
            continue
        spec = app.tools.get(entry["tool"])
        if spec is not None and spec.idempotent:
            continue
        pair = (entry["tool"], entry["key"])
        seen[pair] = seen.get(pair, 0) + 1
    duplicates = [f"{tool} {key}" for (tool, key), count in seen.items() if count > 1]
    return {
        "ok": not duplicates,
        "duplicates": duplicates,
        "checked": len(seen),
        "without_key": unchecked,
    }


def _no_partial_artifacts(app: Seawall, runs: list[RunRecord]) -> dict[str, Any]:
    destination = app.runtime.destination
    if destination is None:
        return {"ok": True, "checked": 0, "note": "the app has no artifact destination"}
    problems = []
    for run in runs:
        manifest = destination.manifest(run.run_id)
        if run.status is not RunStatus.SUCCEEDED:
            if manifest is not None:
                problems.append(f"{run.run_id}: visible but the run {run.status.value}")
            continue
        recorded = {a.name: a.sha256 for a in app.ledger.artifacts(run.run_id)}
        if not recorded:
            continue
        if manifest is None or {e.name: e.sha256 for e in manifest.entries} != recorded:
            problems.append(f"{run.run_id}: manifest missing or different from the ledger")
            continue
        problems.extend(
            f"{run.run_id}: {entry.name} does not match its manifest"
            for entry in manifest.entries
            if digest(destination.read_bytes(run.run_id, entry.name)) != entry.sha256
        )
    return {"ok": not problems, "problems": problems, "checked": len(runs)}


def _no_unverified(app: Seawall, runs: list[RunRecord]) -> dict[str, Any]:
    problems = []
    checked = 0
    for run in runs:
        spec = app.agents.get(run.agent)
        if run.status is not RunStatus.SUCCEEDED or spec is None or not spec.verify:
            continue
        checked += 1
        verdicts = [v for v in app.ledger.verdicts(run.run_id) if v.kind in {"output", "handoff"}]
        if not verdicts:
            if not app.store.list_handoffs(run_id=run.run_id):
                problems.append(f"{run.run_id}: succeeded without a verdict")
            continue
        last_attempt = max(v.attempt for v in verdicts)
        final = [v for v in verdicts if v.attempt == last_attempt]
        if not all(v.passed for v in final) and not app.store.list_handoffs(run_id=run.run_id):
            problems.append(f"{run.run_id}: committed with a failing verdict")
    return {"ok": not problems, "problems": problems, "checked": checked}
