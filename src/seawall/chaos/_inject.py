"""Injecting a fault plan into an app's registered agents and tools.

Every injection is appended to a log (JSON lines, fsynced before the fault strikes, so even a
SIGKILL leaves a record); call counts and fired faults survive restarts through that log, so a
crash fault fires once per session, not once per process.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seawall import _faults
from seawall.artifacts import StagingArea
from seawall.chaos._interrupt import LedgerOutage, stop_myself
from seawall.chaos._workload import append_entry
from seawall.errors import PermanentError, RetryableError

if TYPE_CHECKING:
    from collections.abc import Callable

    from seawall._app import Seawall
    from seawall.chaos._plan import Fault, FaultPlan


class InjectedFault(RetryableError):  # noqa: N818 - it is a fault, by name
    """A transient failure injected by a chaos plan."""

    code = "injected_fault"


class InjectedPermanentFault(PermanentError):  # noqa: N818 - same
    """A permanent failure injected by a chaos plan."""

    code = "injected_permanent_fault"


class Injector:
    """The plan installed in one process, and its shared log.

    Args:
        plan: The faults.
        log: The session's log file (shared by the processes of one chaos session).
    """

    def __init__(self, plan: FaultPlan, log: Path) -> None:
        self.plan = plan
        self.log = log
        self.outage: LedgerOutage | None = None
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._fired: dict[int, int] = {}
        self._dice = {
            index: random.Random(f"{plan.seed}:{index}:{fault.target}")  # noqa: S311 - not crypto
            for index, fault in enumerate(plan.faults)
        }
        for line in log.read_text().splitlines() if log.exists() else []:
            entry = json.loads(line)
            if entry.get("event") == "call":
                self._calls[entry["target"]] = max(self._calls.get(entry["target"], 0), entry["n"])
            elif entry.get("event") == "fault":
                self._fired[entry["fault"]] = self._fired.get(entry["fault"], 0) + 1

    def _write(self, entry: dict[str, Any]) -> None:
        append_entry(self.log, entry)

    def next_fault(self, target: str) -> tuple[int, Fault] | None:
        """Count a call of ``target`` and return the fault to inject now, if any."""
        with self._lock:
            n = self._calls.get(target, 0) + 1
            self._calls[target] = n
            self._write({"event": "call", "target": target, "n": n})
            for index, fault in enumerate(self.plan.faults):
                if fault.target != target:
                    continue
                limit = fault.limit
                if limit is not None and self._fired.get(index, 0) >= limit:
                    continue
                hit = (
                    fault.on_call == n
                    if fault.on_call is not None
                    else self._dice[index].random() < (fault.probability or 0.0)
                )
                if hit:
                    self._fired[index] = self._fired.get(index, 0) + 1
                    self._write(
                        {
                            "event": "fault",
                            "fault": index,
                            "target": target,
                            "kind": fault.kind,
                            "call": n,
                            "run_id": _faults.current_run.get(),
                            "at": time.time(),
                        }
                    )
                    return index, fault
        return None


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _DyingStaging(StagingArea):
    """A staging area whose first write is the last thing the process does."""

    def write_bytes(self, name: str, data: bytes) -> Path:
        path = super().write_bytes(name, data)
        _die()
        return path


def _before(fault: Fault, injector: Injector) -> None:
    kind = fault.kind
    if kind == "stall":
        stop_myself()
    if kind == "ledger_outage":
        assert injector.outage is not None  # noqa: S101 - install() prepares it for the plan
        injector.outage.start(fault.delay)
    if kind == "exception":
        raise InjectedFault("injected transient failure (chaos)")
    if kind in ("permanent", "upstream"):
        raise InjectedPermanentFault(f"injected permanent failure (chaos: {kind})")
    if kind == "timeout":
        raise TimeoutError("injected timeout (chaos)")
    if kind == "crash":
        _die()


def _slow(fault: Fault) -> float:
    return 1.0 if fault.delay is None else fault.delay


def _wrap_tool(fn: Callable[..., Any], target: str, injector: Injector) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_tool(*args: Any, **kwargs: Any) -> Any:
            chosen = injector.next_fault(target)
            fault = None if chosen is None else chosen[1]
            if fault is not None:
                _before(fault, injector)
                if fault.kind == "slow":
                    await asyncio.sleep(_slow(fault))
            result = await fn(*args, **kwargs)
            return _after(fault, result)

        return async_tool

    @functools.wraps(fn)
    def tool(*args: Any, **kwargs: Any) -> Any:
        chosen = injector.next_fault(target)
        fault = None if chosen is None else chosen[1]
        if fault is not None:
            _before(fault, injector)
            if fault.kind == "slow":
                time.sleep(_slow(fault))
        return _after(fault, fn(*args, **kwargs))

    return tool


def _after(fault: Fault | None, result: Any) -> Any:
    if fault is None:
        return result
    if fault.kind == "crash_after_effect":
        _die()
    if fault.kind == "contradict":
        return fault.value if fault.value is not None else {"contradicted": result}
    return result


def _wrap_agent(fn: Callable[..., Any], target: str, injector: Injector) -> Callable[..., Any]:
    def prepare(ctx: Any) -> Fault | None:
        chosen = injector.next_fault(target)
        fault = None if chosen is None else chosen[1]
        if fault is not None:
            _before(fault, injector)
            if fault.kind == "partial_artifacts" and ctx._staging is not None:  # noqa: SLF001
                staging = ctx._staging  # noqa: SLF001
                ctx._staging = _DyingStaging(  # noqa: SLF001
                    staging.dir.parent.parent,
                    staging.run_id,
                    int(staging.dir.name),
                    staging.max_bytes,
                )
        return fault

    def finish(fault: Fault | None, result: Any) -> Any:
        return fault.value if fault is not None and fault.kind == "drift" else result

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_agent(ctx: Any, **inputs: Any) -> Any:
            fault = prepare(ctx)
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(_slow(fault))
            return finish(fault, await fn(ctx, **inputs))

        return async_agent

    @functools.wraps(fn)
    def agent(ctx: Any, **inputs: Any) -> Any:
        fault = prepare(ctx)
        if fault is not None and fault.kind == "slow":
            time.sleep(_slow(fault))
        return finish(fault, fn(ctx, **inputs))

    return agent


def _wrapped(
    wrap: Callable[[Callable[..., Any], str, Injector], Callable[..., Any]],
    target: str,
    injector: Injector,
    fn: Callable[..., Any],
) -> Callable[..., Any]:
    return wrap(fn, target, injector)


def install(app: Seawall, plan: FaultPlan, log: str | Path) -> Injector:
    """Wrap the app's targeted agents and tools so the plan's faults strike them.

    Raises:
        ConfigurationError: A fault targets an agent or tool the app does not register, a
            ``ledger_outage`` a ledger that is neither SQLite nor PostgreSQL, or a ``stall``
            a system without ``SIGSTOP``.
    """
    from seawall.errors import ConfigurationError  # noqa: PLC0415 - keeps the import list short

    injector = Injector(plan, Path(log))
    kinds = {fault.kind for fault in plan.faults}
    if "stall" in kinds and not hasattr(signal, "SIGSTOP"):
        raise ConfigurationError("the chaos fault 'stall' needs SIGSTOP (a POSIX system)")
    if "ledger_outage" in kinds:
        injector.outage = LedgerOutage(app)
    for fault in plan.faults:
        kind, _, name = fault.target.partition(":")
        registry = app.agents if kind == "agent" else app.tools
        if name not in registry:
            raise ConfigurationError(
                f"the fault plan targets {fault.target}, which this app does not register "
                f"(it has agents {sorted(app.agents)} and tools {sorted(app.tools)})"
            )
    for target in sorted({f.target for f in plan.faults}):
        kind, _, name = target.partition(":")
        wrap = _wrap_tool if kind == "tool" else _wrap_agent
        app.runtime.registry.replace(
            name, kind, functools.partial(_wrapped, wrap, target, injector)
        )
    return injector
