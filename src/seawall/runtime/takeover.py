"""Takeover without the broker: live processes find the runs nobody is seeing through.

Two kinds of run are stranded when a process dies or a broker loses a message:

- a run whose owner died: it stays ``running`` with a lease that lapsed (a worker killed
  outright leaves its message unacknowledged in Redis until the visibility timeout, an hour by
  default);
- a run whose message was lost: it stays ``pending``, never claimed (a Redis restart drops its
  queue; a worker killed with a message it had reserved keeps that message for the visibility
  timeout too).

Every process that takes part sweeps the ledger from its heartbeat, at most once per
:data:`SWEEP_EVERY` lease periods, and only the holder of the sweeper lease (one process at a
time, per set of processes serving the same agents on the same queue) does the work. A sweep
hands each stranded run to exactly one taker: a local app resumes it itself (the claim raises
the run's epoch, fencing the dead owner); a distributed executor sends its id to the workers
again, marking the run in the ledger so that it is sent once per :data:`BOUND` lease periods,
however many workers sweep. A run's owner that stopped renewing is thus replaced within about
two lease periods of its lease lapsing, whatever the broker's visibility timeout.

Which ``pending`` runs lost their message is judged from the broker's queue length: a queue
delivers in order, so when it holds fewer messages than there are unclaimed runs, the missing
messages are those of the runs sent first. A run is re-sent only when two sweeps in a row (half
a lease apart) find it among them, so a message a worker is picking up at that instant is not
mistaken for a lost one.

After its takeover work the sweeper also keeps the ledger's counters small
(:mod:`seawall.runtime.upkeep`): one process does it, on a thread that is already there.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from seawall.errors import BrokerUnavailableError
from seawall.runtime.upkeep import Upkeep

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from concurrent.futures import Future

    from seawall._result import RunResult
    from seawall.ledger import RunRecord
    from seawall.runtime.executor import Executor
    from seawall.runtime.services import Runtime

logger = logging.getLogger("seawall.takeover")

SWEEP_EVERY: Final = 0.5
"""Lease periods between two sweeps of the sweeper."""
BOUND: Final = 2.0
"""Lease periods after which a run re-sent without being claimed since may be re-sent again."""
BATCH: Final = 1000
"""Runs one sweep hands over at most, of each kind."""


@runtime_checkable
class Relay(Protocol):
    """An executor that hands runs to workers through a broker (``CeleryExecutor``).

    A sweep of an app whose executor is a relay sends stranded runs to the workers instead of
    resuming them in the sweeping process.
    """

    @property
    def route(self) -> str:
        """Where it sends runs (``celery:QUEUE``): processes sharing it share a sweeper."""
        ...

    def resend(self, run_id: str) -> None:
        """Send a recorded run's id to the workers again."""

    def queued(self) -> int:
        """Return how many messages wait in the broker's queue."""
        ...


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep did.

    Attributes:
        swept: Whether this process held the sweeper lease and swept.
        resumed: Runs whose owner died that this process took over itself.
        resent: Runs whose owner died whose ids were sent to the workers again.
        lost: Unclaimed runs whose message was lost, sent again.
        suspected: Unclaimed runs that look lost, sent again if the next sweep agrees.
        folded: Rows of the dashboard's counters folded after the takeover work
            (:mod:`seawall.runtime.upkeep`).
    """

    swept: bool
    resumed: tuple[str, ...] = ()
    resent: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    suspected: tuple[str, ...] = ()
    folded: int = 0


def lost_messages(unclaimed: int, queued: int) -> int:
    """How many of ``unclaimed`` runs' messages a queue holding ``queued`` messages lacks."""
    return max(0, unclaimed - queued)


def resumable(
    runs: Sequence[RunRecord], agents: Collection[str], graphs: Collection[str]
) -> list[RunRecord]:
    """The runs a local app can resume: its agents' runs and its graphs' (not their nodes).

    A node of a graph run that is resumed too is left to the graph's coordinator.
    """
    resumed_graphs = {r.run_id for r in runs if r.node is None and r.agent in graphs}
    return [
        r
        for r in runs
        if (r.agent in agents or r.run_id in resumed_graphs)
        and r.parent_run_id not in resumed_graphs
    ]


def sweeper_name(route: str, agents: Collection[str]) -> str:
    """The sweeper lease shared by processes serving the same agents on the same route."""
    names = "\n".join(sorted(agents)).encode()
    return f"{route}:{hashlib.sha256(names).hexdigest()[:16]}"


class Takeover:
    """An app's part in the sweeps: when to sweep, and what to do with stranded runs.

    Args:
        rt: The services whose ledger, leases and agents the sweeps use.
        executor: Where the app's runs execute (a distributed one is sent stranded runs).
    """

    def __init__(self, rt: Runtime, executor: Executor) -> None:
        self.rt = rt
        self.executor = executor
        self.serving = False
        """Sweep even without runs in flight (a worker's main process)."""
        self._next = 0.0
        self.upkeep = Upkeep()
        """The ledger upkeep the sweeper does after its takeover work."""
        self._suspects: frozenset[str] = frozenset()
        self._taking: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self._due = False
        self._sweeping = False

    @property
    def every(self) -> float:
        """Seconds between two sweeps."""
        return self.rt.leases.duration * SWEEP_EVERY

    @property
    def bound(self) -> float:
        """Seconds before a run re-sent and still not claimed is sent once more."""
        return self.rt.leases.duration * BOUND

    def serve(self) -> None:
        """Take part in the sweeps from now on, with no runs in flight (start the heartbeat)."""
        self.serving = True
        self.rt.leases.start()

    def beat(self) -> None:
        """Heartbeat work: start a sweep when this process takes part and one is due.

        A process takes part while it has runs in flight, or once :meth:`serve` was called. The
        sweep runs on a thread of its own, so a broker or ledger that hangs never delays the
        renewal of the leases this process holds; one that fails is logged and tried again when
        the next is due.
        """
        if not (self.serving or self.rt.leases.held()):
            return
        now = time.time()
        if now < self._next:
            return
        self._next = now + self.every
        with self._wake:
            self._due = True
            if self._sweeping:
                self._wake.notify()
                return
            self._sweeping = True
        threading.Thread(target=self._sweeps, name="seawall-takeover", daemon=True).start()

    def _sweeps(self) -> None:
        """The sweeping thread: one sweep per beat that asked, until none asks for a while."""
        while True:
            with self._wake:
                if not self._due:
                    self._wake.wait(timeout=4 * self.every)
                if not self._due:
                    self._sweeping = False
                    return
                self._due = False
            try:
                self.sweep()
            except Exception:  # a broker's or the ledger's fault must not stop the sweeps
                logger.warning(
                    "takeover sweep failed; trying again in %.1f s", self.every, exc_info=True
                )

    def sweep(self, now: float | None = None) -> Sweep:
        """Sweep once, if this process holds (or can take) the sweeper lease.

        After the takeover work the sweeper folds the dashboard's counters when a fold is due
        (:class:`~seawall.runtime.upkeep.Upkeep`; a failed fold is logged, not raised).

        Returns:
            What was handed over, and the counter rows folded.

        Raises:
            LedgerError: The ledger could not be read or written.
            BrokerUnavailableError: The broker could not be reached.
        """
        rt = self.rt
        now = time.time() if now is None else now
        executor = self.executor
        relay = executor if isinstance(executor, Relay) else None
        agents = sorted(rt.registry.agents)
        name = sweeper_name(
            "local" if relay is None else relay.route, [*agents, *sorted(rt.registry.graphs)]
        )
        if not rt.store.claim_sweeper(name, rt.leases.owner, now, now + 2 * self.every):
            self._suspects = frozenset()
            return Sweep(swept=False)
        swept = self._hand_over(relay, agents, now)
        return dataclasses.replace(swept, folded=self.upkeep.fold(rt.store, now))

    def _hand_over(self, relay: Relay | None, agents: list[str], now: float) -> Sweep:
        """The sweeper's takeover work: resume or re-send the stranded runs."""
        rt = self.rt
        if relay is None:
            return Sweep(swept=True, resumed=tuple(self._resume_lapsed(now)))
        resent = rt.store.resend_lapsed(relay.route, now, agents, now - self.bound, BATCH)
        for run in resent:
            relay.resend(run.run_id)
        if resent:
            logger.warning(
                "%d run(s) whose owner stopped renewing its lease; sent to the workers again: %s",
                len(resent),
                ", ".join(f"{r.run_id} (of {r.lease_owner})" for r in resent[:10]),
            )
        lost, suspected = self._resend_lost(relay, agents, now)
        return Sweep(
            swept=True,
            resent=tuple(r.run_id for r in resent),
            lost=tuple(lost),
            suspected=tuple(suspected),
        )

    def lost_runs(self, now: float) -> list[RunRecord]:
        """The unclaimed runs whose message looks lost now (``seawall resume`` takes them).

        With a broker, the runs sent first beyond what its queue holds; without one, every
        unclaimed run sent more than :attr:`bound` seconds ago.
        """
        store = self.rt.store
        agents = sorted(self.rt.registry.agents)
        relay = self.executor
        if not isinstance(relay, Relay):
            candidates = store.oldest_unclaimed(None, agents, now, BATCH)
            return [r for r in candidates if r.start_time < now - self.bound]
        unclaimed = store.count_unclaimed(relay.route, agents, now)
        if not unclaimed:
            return []
        try:
            queued = relay.queued()
        except BrokerUnavailableError:
            logger.warning(
                "%d unclaimed run(s) on %s, but the broker cannot be reached to tell which lost "
                "their message: none is taken",
                unclaimed,
                relay.route,
                exc_info=True,
            )
            return []
        missing = lost_messages(unclaimed, queued)
        return store.oldest_unclaimed(relay.route, agents, now, min(missing, BATCH))

    def _resend_lost(
        self, relay: Relay, agents: list[str], now: float
    ) -> tuple[list[str], list[str]]:
        """Send again the unclaimed runs two sweeps in a row found without a message."""
        store = self.rt.store
        unclaimed = store.count_unclaimed(relay.route, agents, now)
        missing = lost_messages(unclaimed, relay.queued()) if unclaimed else 0
        again = now - self.bound
        candidates = (
            [
                r.run_id
                for r in store.oldest_unclaimed(relay.route, agents, again, min(missing, BATCH))
            ]
            if missing
            else []
        )
        confirmed = [run_id for run_id in candidates if run_id in self._suspects]
        self._suspects = frozenset(candidates)
        lost = store.mark_resent(confirmed, now, now - self.bound)
        for run_id in lost:
            relay.resend(run_id)
        if lost:
            logger.warning(
                "%d pending run(s) whose message the broker lost (%d unclaimed, %d queued); "
                "sent again: %s",
                len(lost),
                unclaimed,
                unclaimed - missing,
                ", ".join(lost[:10]),
            )
        return lost, [run_id for run_id in candidates if run_id not in confirmed]

    def _resume_lapsed(self, now: float) -> list[str]:
        """Resume here, on the app's loop, the runs of this app's agents whose owner died."""
        rt = self.rt
        names = [*rt.registry.agents, *rt.registry.graphs]
        lapsed = [
            r
            for r in rt.store.lapsed_runs(None, names, now, BATCH)
            if r.lease_owner != rt.leases.owner
        ]
        runs = resumable(lapsed, rt.registry.agents, rt.registry.graphs)
        started = []
        for run in runs:
            with self._lock:
                if run.run_id in self._taking:
                    continue
                self._taking.add(run.run_id)
            future = rt.submit_coroutine(rt.engine.resume_run(run))
            future.add_done_callback(functools.partial(self._taken, run))
            started.append(run.run_id)
        if started:
            logger.warning(
                "%d run(s) whose owner stopped renewing its lease; taking over here: %s",
                len(started),
                ", ".join(started[:10]),
            )
        return started

    def _taken(self, run: RunRecord, done: Future[RunResult | None]) -> None:
        with self._lock:
            self._taking.discard(run.run_id)
        error = done.exception() if not done.cancelled() else None
        if error is not None:
            logger.warning(
                "taking over run %s (of %s) failed", run.run_id, run.lease_owner, exc_info=error
            )


__all__ = ["BOUND", "SWEEP_EVERY", "Relay", "Sweep", "Takeover", "lost_messages", "resumable"]
