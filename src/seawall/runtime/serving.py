"""What a journal serves when the code asks for a step again: the rules of recorded steps.

A resumed or retried attempt asks for its steps again. The journal holds, for each, the row an
earlier owner wrote: a completed step is served (its result returned, nothing executed), an
unfinished mutating step is *in doubt* (re-issued under its key only when the tool is
idempotent, checked with its ``read_back``, otherwise handed to a person), and a request that
differs from the row where a completed side effect follows stops the run with a readable diff.
:class:`ServedSteps` holds those rules; :class:`~seawall.runtime.journal.Journal` adds writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from seawall import _payload
from seawall._diff import describe, request_changes
from seawall.errors import InDoubtError, JournalDivergenceError, SerializationError

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Mapping, Sequence

    from seawall._payload import Blob
    from seawall.ledger import StepRecord, Store
    from seawall.observe.cost import UsageEntry
    from seawall.runtime.registry import ToolSpec

STARTED: Final = "started"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
_DONE: Final = (COMPLETED, STARTED)
VALUE_KINDS: Final = ("now", "uuid", "random")
"""Steps that draw a value (``ctx.now/uuid/random``): served again on every later line."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the journal holds for a step the code asks for.

    Attributes:
        action: ``serve`` (return ``value``), ``live`` (execute it), ``read_back`` (an in-doubt
            call whose tool can tell whether it took effect), ``resume`` (a child run that was
            started: see it through).
        value: The recorded result, for ``serve``.
        seq: Where the step's row lives: this position, or an earlier line's effect.
        key: The idempotency key to re-issue it with (an earlier line's), else ``None``.
        status: The status of the recorded row it stands for, if any.
    """

    action: str
    value: Any = None
    seq: int = 0
    key: str | None = None
    status: str | None = None


LIVE: Final = Recorded("live")


@dataclass(frozen=True, slots=True)
class Asked:
    """The request the code makes at a step, as stored: shown as a diff when it diverges.

    Attributes:
        column: Its row column (``None`` when not kept, e.g. a drawn value).
        blobs: The blobs the column refers to, not written yet.
    """

    column: bytes | None
    blobs: Sequence[Blob] = ()


def is_effect(step: StepRecord) -> bool:
    """Whether a step is a side effect that may have happened (completed or in doubt)."""
    return step.mutating and step.status in _DONE


class ServedSteps:
    """The serving half of a run's journal: what it holds at each step the code asks for."""

    __slots__ = ()

    run_id: str
    store: Store
    seq: int
    line: dict[int, StepRecord]
    effects: deque[StepRecord] | None
    """The side effects of earlier lines not served yet, in order (``None``: no earlier line)."""
    values: dict[str, deque[StepRecord]]
    blobs: dict[str, Blob]
    trim: int | None
    usage: dict[int, UsageEntry]
    retried_usage: list[UsageEntry]

    def decode(self, column: bytes) -> Any:
        """Decode a stored column (blobs read beforehand are used first)."""
        return _payload.unpack(column, self._fetch)

    def _fetch(self, hashes: list[str]) -> Mapping[str, Blob]:
        missing = [h for h in hashes if h not in self.blobs]
        if missing:
            self.blobs.update(self.store.get_blobs(missing))
        return self.blobs

    def _recorded(self, step: StepRecord, spec: ToolSpec | None, name: str) -> Recorded:
        if step.status == COMPLETED:
            return Recorded("serve", self.result_of(step, name), step.seq)
        if step.status == STARTED and step.mutating:
            if step.kind == "run":
                # A child run cut off by a crash: its id is the step's key; take it over.
                return Recorded("resume", seq=step.seq, key=step.idempotency_key, status=STARTED)
            return self._in_doubt(step, spec, name)
        return Recorded("live", seq=step.seq, key=step.idempotency_key, status=step.status)

    def _in_doubt(self, step: StepRecord, spec: ToolSpec | None, name: str) -> Recorded:
        if spec is not None and spec.read_back is not None:
            return Recorded("read_back", seq=step.seq, key=step.idempotency_key, status=STARTED)
        if spec is not None and spec.idempotent:
            return Recorded("live", seq=step.seq, key=step.idempotency_key, status=STARTED)
        raise InDoubtError(
            f"step {step.seq} ({name}) was in flight when its process died, so its side effect "
            "may or may not have happened; the tool is not declared idempotent, so Seawall "
            "will not re-issue it. Check the target system, then resolve it (seawall dlq "
            "resolve RUN --happened / --did-not-happen). Declare @app.tool(idempotent=True) if "
            "it dedupes on its idempotency_key",
            run_id=self.run_id,
            step=step.seq,
            tool=name,
            idempotency_key=step.idempotency_key,
        )

    def _earlier_effect(
        self,
        seq: int,
        spec: ToolSpec | None,
        name: str,
        request_hash: str,
        request: Asked,
    ) -> Recorded:
        """Match a side effect the code asks for with the next one an earlier line did."""
        effects = self.effects
        while effects:
            done = effects[0]
            if done.name == name and done.request_hash == request_hash:
                effects.popleft()
                return self._recorded(done, spec, name)
            if done.status == FAILED:
                effects.popleft()  # it raised: nothing of it to keep
                continue
            changes = self.changes(done, name, request)
            raise JournalDivergenceError(
                f"step {done.seq}: a retry asks for {name!r} where the run already did "
                f"{done.name!r} (key {done.idempotency_key}); that side effect is done and "
                "Seawall will neither drop nor repeat it, so the run stops here. "
                f"Changes: {describe(changes) or '(none)'}",
                run_id=self.run_id,
                step=done.seq,
                asked_at=seq,
                expected=done.name,
                got=name,
                changes=[c.to_dict() for c in changes],
            )
        return LIVE

    def unserved_effects(self) -> list[StepRecord]:
        """Side effects done by earlier lines, or on this line ahead of where the code stopped.

        An attempt that ends without asking for them built its result without them.
        """
        left = [s for s in self.effects or () if s.status in _DONE]
        left += [s for seq, s in sorted(self.line.items()) if seq > self.seq and is_effect(s)]
        return left

    def check_all_effects_served(self) -> None:
        """Raise when the attempt ends without a side effect the run already did.

        Raises:
            JournalDivergenceError: It does.
        """
        left = self.unserved_effects()
        if not left:
            return
        listed = ", ".join(f"step {s.seq} ({s.name}, key {s.idempotency_key})" for s in left)
        raise JournalDivergenceError(
            f"the attempt ended without asking for side effects the run already did: {listed}. "
            "Seawall will not drop a completed side effect nor trust a result built without it; "
            "the run stops (its compensations run)",
            run_id=self.run_id,
            step=left[0].seq,
            expected=left[0].name,
            got="end of run",
        )

    def result_of(self, step: StepRecord, name: str) -> Any:
        """A completed step's recorded result (one whose result could not be stored raises)."""
        if step.response is None:
            raise SerializationError(
                f"step {step.seq} ({name}) completed but its result could not be stored: "
                f"{step.error_message}",
                run_id=self.run_id,
                step=step.seq,
            )
        return self.decode(step.response)

    def changes(self, step: StepRecord, name: str, request: Asked) -> list[Any]:
        """How the request the code makes differs from a recorded step's (empty if unknown)."""
        if request.column is None:
            return []
        own = {blob.hash: blob for blob in request.blobs}

        def fetch(hashes: list[str]) -> Mapping[str, Blob]:
            # The request's blobs are not written yet: take them from the request first.
            return {**self._fetch([h for h in hashes if h not in own]), **own}

        try:
            before = self.decode(step.request)
            after = _payload.unpack(request.column, fetch)
        except (LookupError, ValueError):
            return []
        if step.name != name and not (isinstance(before, list) and isinstance(after, list)):
            before, after = {"step": step.name}, {"step": name}
        return request_changes(before, after)
