"""The result of a run, as returned by ``app.run`` and ``app.arun``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from seawall._failures import ErrorClass, FailureCause, RunStatus
from seawall.errors import RunFailedError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from seawall.ledger import AttemptRecord


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run ended with.

    Attributes:
        run_id: The run's id (look it up with ``seawall show RUN_ID``).
        agent: The agent's registered name.
        status: The final status; only ``succeeded`` means a trusted result.
        output: The agent's output when it succeeded, else ``None``.
        error_class: For a run that did not succeed: one of the four classes.
        failure_cause: Why, in finer words.
        error: The structured form of the final error (``code``, ``type``, ``message``...).
        attempts: Every attempt, failed ones included, in order.
        tokens_used: Tokens recorded by the run.
        cost_usd: Cost recorded by the run.
        input_hash: sha256 of the input snapshot.
        output_hash: sha256 of the output, when there is one.
        nodes: For a graph run, each node's result by node name.
    """

    run_id: str
    agent: str
    status: RunStatus
    output: Any
    error_class: ErrorClass | None
    failure_cause: FailureCause | None
    error: dict[str, Any] | None
    attempts: tuple[AttemptRecord, ...]
    tokens_used: int
    cost_usd: float | None
    input_hash: str
    output_hash: str | None
    nodes: Mapping[str, RunResult] = field(default_factory=dict)

    def with_nodes(self, nodes: Mapping[str, RunResult]) -> RunResult:
        """This result with its graph nodes' results."""
        return replace(self, nodes=dict(nodes))

    @property
    def ok(self) -> bool:
        """Whether the run succeeded."""
        return self.status is RunStatus.SUCCEEDED

    def raise_for_status(self) -> RunResult:
        """Return ``self`` when the run succeeded, else raise.

        Raises:
            RunFailedError: The run did not succeed; its fields name the class and cause.
        """
        if self.ok:
            return self
        message = (self.error or {}).get("message", "no error recorded")
        raise RunFailedError(
            f"run {self.run_id} of agent {self.agent!r} ended {self.status.value} "
            f"({self.error_class}, {self.failure_cause}): {message}. "
            f"See: seawall show {self.run_id}",
            run_id=self.run_id,
            agent=self.agent,
            status=self.status.value,
            error_class=None if self.error_class is None else self.error_class.value,
            failure_cause=None if self.failure_cause is None else self.failure_cause.value,
        )
