"""What every process of a chaos session shares: the target it loads and the log it appends to.

A workload process and a competing process (one that takes a stalled run over) both load the
user's target, log each mutating call, and append to the session's log, which the session reads
back to check its invariants.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seawall import _faults
from seawall._app import Seawall
from seawall._graph import Graph
from seawall.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable


def append_entry(log: Path, entry: dict[str, Any]) -> None:
    """Append one line to the session's log and fsync it (it must survive a crash)."""
    with log.open("a") as handle:
        handle.write(json.dumps(entry, default=repr) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def load_target(spec: str) -> tuple[Seawall, Any, str]:
    """Import ``module:attribute`` naming an agent or graph; return its app, target and name.

    The module must define the app as ``app`` (or name it ``module:attr@app_attr``).

    Raises:
        ConfigurationError: ``spec`` is malformed or the module has no such app.
    """
    target_spec, _, app_attr = spec.partition("@")
    module_name, sep, attribute = target_spec.partition(":")
    if not sep:
        raise ConfigurationError(f"{spec!r} is not module:attribute")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module(module_name)
    app = getattr(module, app_attr or "app", None)
    if not isinstance(app, Seawall):
        raise ConfigurationError(
            f"module {module_name!r} has no Seawall app named {app_attr or 'app'!r}"
        )
    target = getattr(module, attribute)
    if isinstance(target, Graph):
        app.graph(target)
        return app, target, target.name
    return app, target, app.runtime.registry.agent(target).name


def log_mutations(app: Seawall, log: Path) -> None:
    """Record every mutating call (tool, key, run) so duplicates can be found afterwards."""

    def record(tool: str, kwargs: dict[str, Any]) -> None:
        entry = {
            "event": "mutation",
            "tool": tool,
            "key": kwargs.get("idempotency_key"),
            "run_id": _faults.current_run.get(),
        }
        append_entry(log, entry)

    for name, spec in app.tools.items():
        if spec.mutating:
            app.runtime.registry.replace(name, "tool", functools.partial(_logged, name, record))


def _logged(
    name: str, record: Callable[[str, dict[str, Any]], None], fn: Callable[..., Any]
) -> Callable[..., Any]:
    """``fn``, recording each call that returns (not one that raises)."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def logged_async(*args: Any, **kwargs: Any) -> Any:
            result = await fn(*args, **kwargs)
            record(name, kwargs)
            return result

        return logged_async

    @functools.wraps(fn)
    def logged(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        record(name, kwargs)
        return result

    return logged
