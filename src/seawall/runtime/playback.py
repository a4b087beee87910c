"""Recorded replay: the current code served from another run's journal.

The replay serves the recorded steps while the code asks for them. Where the current code asks
for something the recording lacks or recorded otherwise (a bug was fixed in the middle of the
run), a read-only call (a model, a read) runs live; a side effect is served only when it is the
next one the recording holds, by tool and request, so none is ever repeated; any other side effect
stops the replay with a readable diff, unless the operator allowed mutations. The replay keeps a
report of what was served, what ran live, what stopped it and which recorded effects the code
never asked for.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from seawall._diff import describe
from seawall.errors import ReplayDivergenceError, ReplayedToolError
from seawall.runtime.serving import COMPLETED, FAILED, LIVE, STARTED, Asked, Recorded, is_effect

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall.ledger import StepRecord
    from seawall.runtime.journal import Journal


class Playback:
    """The recording a replay serves from, and what the replay did with it.

    Args:
        recorded: The original run's steps.
        base: Where the original's last journal line starts: the replay's step ``n`` is the
            recording's step ``base + n``.
        allow_mutations: Whether a side effect the recording lacks may run live.
        report: Where to append one entry per step (``served``, ``live``, ``stopped``,
            ``not asked``).
    """

    def __init__(
        self,
        recorded: Sequence[StepRecord],
        base: int,
        *,
        allow_mutations: bool = False,
        report: list[dict[str, Any]] | None = None,
    ) -> None:
        self.base = base
        self.line = {s.seq: s for s in recorded if s.seq > base}
        earlier = sorted((s for s in recorded if s.seq <= base), key=lambda s: s.seq)
        line_effects = sorted((s for s in self.line.values() if is_effect(s)), key=lambda s: s.seq)
        # Every side effect the recording holds, in the order it happened.
        self.effects: deque[StepRecord] = deque(
            [*(s for s in earlier if is_effect(s)), *line_effects]
        )
        self.allow_mutations = allow_mutations
        self.report = report if report is not None else []

    def serve(  # noqa: PLR0911 - one answer per way a step meets the recording
        self,
        journal: Journal,
        seq: int,
        name: str,
        request_hash: str,
        request: Asked,
        *,
        effect: bool,
    ) -> Recorded:
        """Serve step ``seq`` from the recording, or say it runs live.

        Raises:
            ReplayDivergenceError: A side effect the recording does not hold next (or holds in
                doubt), and mutations are not allowed.
            ReplayedToolError: The recording holds a side effect that failed.
        """
        step = self.line.get(self.base + seq)
        if step is not None and step.name == name and step.request_hash == request_hash:
            if not effect:
                if step.status == COMPLETED:
                    return self._served(journal, seq, step, name)
                self._note(seq, name, "live", "it failed in the recording: asked again")
                return LIVE
            if step in self.effects:
                self.effects.remove(step)
                return self._effect(journal, seq, step, name, request_hash)
            if step.status == FAILED:
                # It raised in the recording (no effect happened): the replay raises the same
                # failure rather than sending the side effect for the first time.
                return self._effect(journal, seq, step, name, request_hash)
        if not effect:
            held = "nothing" if step is None else repr(step.name)
            self._note(seq, name, "live", f"the recording holds {held} here")
            return LIVE
        following = self.effects[0] if self.effects else None
        if (
            following is not None
            and following.name == name
            and following.request_hash == request_hash
        ):
            self.effects.popleft()
            return self._effect(journal, seq, following, name, request_hash)
        if self.allow_mutations:
            self._note(seq, name, "live", "a side effect the recording lacks (mutations allowed)")
            return LIVE
        return self._stop(journal, seq, name, request_hash, request, following)

    def _effect(
        self, journal: Journal, seq: int, step: StepRecord, name: str, request_hash: str
    ) -> Recorded:
        if step.status == STARTED:
            raise ReplayDivergenceError(
                f"step {seq} ({name}) was in doubt in the recording: its result was never "
                "recorded, so a recorded replay cannot serve it",
                run_id=journal.run_id,
                step=seq,
                expected="a recorded result",
                got=f"{name} {request_hash[:12]}",
            )
        if step.status == FAILED:
            self._copy(journal, seq, step)
            self._note(seq, name, "served", "its recorded failure")
            raise ReplayedToolError(
                f"step {seq} ({name}) failed in the recording with {step.error_type}: "
                f"{step.error_message}",
                run_id=journal.run_id,
                step=seq,
                error_type=step.error_type,
                error_message=step.error_message,
            )
        return self._served(journal, seq, step, name)

    def _served(self, journal: Journal, seq: int, step: StepRecord, name: str) -> Recorded:
        self._copy(journal, seq, step)
        if step.kind == "usage":
            journal.usage[seq] = journal.usage_of(step)
        moved = step.seq != self.base + seq
        self._note(seq, name, "served", f"recorded at step {step.seq}" if moved else "")
        return Recorded("serve", journal.result_of(step, name), seq)

    def _stop(
        self,
        journal: Journal,
        seq: int,
        name: str,
        request_hash: str,
        request: Asked,
        following: StepRecord | None,
    ) -> Recorded:
        if following is None:
            detail = "the recording has no further side effect"
            changes: list[Any] = []
        else:
            changes = journal.changes(following, name, request)
            detail = (
                f"the recording's next side effect is {following.name!r} (step {following.seq})"
            )
            if following.name == name:
                detail += f", with other arguments: {describe(changes)}"
        self._note(seq, name, "stopped", detail)
        raise ReplayDivergenceError(
            f"step {seq}: the code asks for the side effect {name!r} but {detail}; a recorded "
            "replay repeats no side effect, so it stops here (replay with --allow-mutations to "
            "let it run live, or --live)",
            run_id=journal.run_id,
            step=seq,
            expected="end of journal"
            if following is None
            else f"{following.name} {following.request_hash[:12]}",
            got=f"{name} {request_hash[:12]}",
            changes=[c.to_dict() for c in changes],
        )

    def finish(self) -> None:
        """Report the recorded side effects the code never asked for."""
        for step in self.effects:
            self._note(step.seq, step.name, "not asked", "a recorded side effect")

    def _note(self, seq: int, name: str, action: str, detail: str) -> None:
        self.report.append({"step": seq, "name": name, "action": action, "detail": detail})

    @staticmethod
    def _copy(journal: Journal, seq: int, step: StepRecord) -> None:
        """Record the served step in the replay's own journal, as the recording has it."""
        journal.pending.append(
            (
                journal.run_id,
                seq,
                journal.attempt,
                step.kind,
                step.name,
                1 if step.mutating else 0,
                step.idempotency_key,
                step.request_hash,
                step.request,
                step.response,
                step.status,
                step.start_time,
                step.end_time,
                step.error_type,
                step.error_message,
                step.tries,
            )
        )
