"""Garbage collection of staging folders left by dead processes.

Staging lives at ``<staging root>/<run_id>/<attempt>/``. A folder is removed when its run has
ended, when its run is unknown, when it belongs to an older attempt than the run's current one,
or when the run's lease has lapsed (a resumed run starts a fresh attempt). It is kept while its
run's lease is live and it is the current attempt, and while the run is committing (a resumer
may still publish it).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from seawall.artifacts._staging import remove_tree

if TYPE_CHECKING:
    from pathlib import Path

    from seawall.ledger import RunRecord, Store


@dataclass(frozen=True, slots=True)
class GcEntry:
    """What garbage collection did (or would do) with one staging folder.

    Attributes:
        run_id: The run the folder belongs to.
        attempt: The attempt it belongs to.
        path: The folder.
        removed: Whether it was removed (or, in a dry run, would be).
        reason: Why.
    """

    run_id: str
    attempt: int | None
    path: str
    removed: bool
    reason: str


def staging_verdict(  # noqa: PLR0911 - one verdict per line, first match wins
    run: RunRecord | None, attempt: int | None, now: float
) -> tuple[bool, str]:
    """Decide whether a staging folder is garbage (pure: no I/O).

    Args:
        run: The folder's run as the ledger has it, or ``None`` when unknown.
        attempt: The attempt number in the folder's name (``None`` when not a number).
        now: The current time.

    Returns:
        ``(remove, reason)``.
    """
    if run is None:
        return True, "no such run in the ledger"
    if attempt is None:
        return True, "not an attempt folder"
    if run.status.final:
        return True, f"run ended {run.status.value}"
    if run.status.value == "awaiting_human":
        return False, "waiting for a person (an approval commits it)"
    if run.phase == "committing":
        return False, "commit in progress (a resumer may still publish it)"
    if attempt > run.attempts:
        return False, "attempt newer than the ledger knows (starting now)"
    if attempt < run.attempts:
        return True, f"attempt {attempt} was superseded by attempt {run.attempts}"
    if run.lease_expires_at is not None and run.lease_expires_at >= now:
        return False, "run is live (its lease is held)"
    return True, "run's owner died (lease lapsed); a resumed run starts a fresh attempt"


def collect(store: Store, root: Path, now: float, *, dry_run: bool = False) -> list[GcEntry]:
    """Remove (or list, when ``dry_run``) the garbage staging folders under ``root``."""
    entries: list[GcEntry] = []
    if not root.is_dir():
        return entries
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        run = store.get_run(run_dir.name)
        for attempt_dir in sorted(run_dir.iterdir()):
            attempt = int(attempt_dir.name) if attempt_dir.name.isdigit() else None
            remove, reason = staging_verdict(run, attempt, now)
            if remove and not dry_run:
                remove_tree(attempt_dir)
            entries.append(GcEntry(run_dir.name, attempt, str(attempt_dir), remove, reason))
        if not dry_run:
            with contextlib.suppress(OSError):
                run_dir.rmdir()
    return entries
