"""Seeded fault schedules of the fault matrix, and the tally of what they did (pure: no I/O).

A schedule is one run of the workload (``benchmarks.fault_workload``) on a fresh ledger and a
sequence of faults, each aimed at whichever process owns the run when its moment comes:

- ``kill``: SIGKILL of the owner; a new process takes the run over once its lease lapses;
- ``stall``: SIGSTOP of the owner past its lease while a competing process takes the run over,
  then SIGCONT: the stale owner must find itself fenced and change nothing;
- ``outage``: the ledger made unreachable for longer than the owner waits for it:
  ``sqlite_lock`` (another process holds the write lock past ``busy_timeout``), ``pg_cutoff``
  (the owner's PostgreSQL connections are terminated and new ones refused for longer than the
  retry window) or ``pg_down`` (the whole throwaway server is stopped for that long);
- ``pause``: SIGSTOP of a Celery worker (its pool process, or all of it) past the lease; another
  worker takes the run over; then SIGCONT.

A fault's moment ``at`` is a share of the run's measured duration (the median of unfaulted runs
of the same store), counted from when its target started executing the run (for a process that
took the run over, a share of what was left of it); a stall's or pause's ``wake`` is a share of
it counted from the takeover. Everything is drawn from
``(seed, store, index)``, so ``--seed S --only INDEX`` replays one schedule. The first fault of
schedule ``i`` cycles through the store's kinds, so every kind is drawn even in a short matrix.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Final

STORES: Final = ("sqlite", "postgres", "celery")

# (kind, outage) choices per store and their weights; the cycle fixes each first fault.
_MENU: Final[dict[str, tuple[tuple[str, str | None], ...]]] = {
    "sqlite": (("kill", None), ("stall", None), ("outage", "sqlite_lock")),
    "postgres": (("kill", None), ("stall", None), ("outage", "pg_cutoff"), ("outage", "pg_down")),
    "celery": (("pause", None),),
}
_WEIGHTS: Final[dict[str, tuple[int, ...]]] = {
    "sqlite": (4, 4, 2),
    "postgres": (4, 4, 2, 1),
    "celery": (1,),
}
_CYCLE: Final[dict[str, tuple[int, ...]]] = {
    "sqlite": (0, 1, 2),
    "postgres": (3, 0, 1, 2, 0, 1, 2, 0, 1, 2),  # a whole-server outage in one of ten
    "celery": (0,),
}
_FAULTS_PER_SCHEDULE: Final = ((1, 2, 3), (5, 3, 2))
"""Faults in one schedule, and their weights (Celery schedules have one)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault of a schedule.

    Attributes:
        kind: ``kill``, ``stall``, ``outage`` or ``pause``.
        at: When, as a share of the measured run duration after its target started the run.
        wake: For a stall or pause: when SIGCONT comes, as a share of it after the takeover.
        outage: For an outage: ``sqlite_lock``, ``pg_cutoff`` or ``pg_down``.
        whole: For a pause: stop the whole Celery worker, not only its pool process.
    """

    kind: str
    at: float
    wake: float = 0.0
    outage: str | None = None
    whole: bool = False

    @property
    def label(self) -> str:
        """What counts it: the kind, or the outage's kind."""
        return self.outage or self.kind

    def describe(self) -> str:
        """One line for people."""
        what = self.label + (" (whole worker)" if self.kind == "pause" and self.whole else "")
        wake = f", SIGCONT at {self.wake:.2f}" if self.kind in ("stall", "pause") else ""
        return f"{what} at {self.at:.2f}{wake}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """One schedule: a store, the seed it was drawn from, and its faults in order."""

    store: str
    seed: int
    index: int
    faults: tuple[Fault, ...]

    @property
    def exclusive(self) -> bool:
        """Whether it stops the shared server (it must run with no other schedule)."""
        return any(f.outage == "pg_down" for f in self.faults)

    def describe(self) -> str:
        """One line for people, with what replays it."""
        faults = "; ".join(f.describe() for f in self.faults) or "no fault"
        return f"{self.store} #{self.index} (--seed {self.seed} --only {self.index}): {faults}"


def draw(store: str, seed: int, index: int) -> Schedule:
    """Draw schedule ``index`` of ``store`` from ``seed``."""
    rng = random.Random(f"{seed}:{store}:{index}")
    menu, weights, cycle = _MENU[store], _WEIGHTS[store], _CYCLE[store]
    sizes, size_weights = _FAULTS_PER_SCHEDULE
    count = 1 if store == "celery" else rng.choices(sizes, weights=size_weights)[0]
    chosen = [menu[cycle[index % len(cycle)]]]
    chosen += rng.choices(menu, weights=weights, k=count - 1)
    faults = tuple(
        Fault(kind, at=rng.random(), wake=rng.random(), outage=outage, whole=rng.random() < 0.5)
        for kind, outage in chosen
    )
    return Schedule(store, seed, index, faults)


def matrix(store: str, seed: int, count: int, only: int | None = None) -> list[Schedule]:
    """The ``count`` schedules of ``store`` (or just schedule ``only``)."""
    indexes = [only] if only is not None else list(range(count))
    return [draw(store, seed, index) for index in indexes]


@dataclass
class Outcome:
    """What one schedule did and found.

    Attributes:
        schedule: The schedule.
        faults: Faults applied, by label; ``stall_fenced``/``pause_taken_over`` count the
            stalls and pauses during which another process took the run over, and
            ``after_end`` the faults whose moment came after the run had ended.
        duplicates: Effects in the log beyond the first of their step, by kind.
        violations: Broken invariants, one line each.
        status: The run's final status (``failure_cause`` after a slash).
        seconds: Wall time of the schedule.
        duration: For a succeeded run: from its first attempt's start to its end.
    """

    schedule: Schedule
    faults: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    status: str = "?"
    seconds: float = 0.0
    duration: float | None = None


@dataclass
class Tally:
    """The counts of one store's schedules."""

    store: str
    schedules: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    duration: float = 0.0

    def add(self, outcome: Outcome) -> None:
        """Count one schedule's outcome."""
        self.schedules += 1
        self.faults.update(outcome.faults)
        self.duplicates.update(outcome.duplicates)
        self.statuses[outcome.status] += 1
        self.violations.extend(
            f"{outcome.schedule.describe()}: {violation}" for violation in outcome.violations
        )

    def lines(self) -> list[str]:
        """The tally for people."""
        faults = self.faults
        outages = faults["sqlite_lock"] + faults["pg_cutoff"] + faults["pg_down"]
        return [
            (
                f"{self.store}: {self.schedules:,} schedules in {self.seconds:.0f} s "
                f"(measured run duration {1000 * self.duration:.0f} ms)"
            ),
            (
                f"  kills {faults['kill']:,}; stalls {faults['stall']:,} "
                f"({faults['stall_fenced']:,} taken over and fenced); outages {outages:,} "
                f"(sqlite_lock {faults['sqlite_lock']:,}, pg_cutoff {faults['pg_cutoff']:,}, "
                f"pg_down {faults['pg_down']:,}); worker pauses {faults['pause']:,} "
                f"({faults['pause_taken_over']:,} taken over); after the run ended "
                f"{faults['after_end']:,}"
            ),
            "  duplicates: "
            + (", ".join(f"{k} {v:,}" for k, v in sorted(self.duplicates.items())) or "none"),
            "  final statuses: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(self.statuses.items())),
            f"  violations: {len(self.violations)}",
        ]
