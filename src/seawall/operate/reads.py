"""``app.ledger``: what the ledger holds about runs, read back with payloads decoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seawall import _payload
from seawall._failures import ErrorClass, RunStatus
from seawall.errors import ConfigurationError
from seawall.ledger import RunQuery
from seawall.runtime.services import MISSING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from seawall._result import RunResult
    from seawall.ledger import (
        AlertRecord,
        ArtifactRecord,
        AttemptRecord,
        CompensationRecord,
        RunRecord,
        StepRecord,
        VerdictRecord,
    )
    from seawall.observe.evaluation import DriftReport
    from seawall.runtime.services import Runtime


@dataclass(frozen=True, slots=True)
class Step:
    """One journaled step with its payloads decoded (see :class:`~seawall.ledger.StepRecord`).

    Attributes:
        record: The step's ledger row.
        request: The decoded request: ``[tool, args, kwargs]`` for a tool step.
        response: The decoded result, when it has one.
    """

    record: StepRecord
    request: Any
    response: Any


class LedgerReads:
    """``app.ledger``: runs, their attempts, journals, artifacts, verdicts and alerts.

    Every read is one or a few short ledger queries, so none has an async twin.
    """

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def run(self, run_id: str) -> RunRecord:
        """Return a run's ledger row.

        Raises:
            RunNotFoundError: No run has this id.
        """
        return self._rt.get_run(run_id)

    def runs(
        self,
        *,
        status: RunStatus | str | None = None,
        agent: str | None = None,
        error_class: ErrorClass | str | None = None,
        since: float | None = None,
        parent_run_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """List runs, newest first.

        Args:
            status: Only runs with this status.
            agent: Only runs of this agent.
            error_class: Only runs of this error class.
            since: Only runs submitted at or after this Unix time.
            parent_run_id: Only children of this run.
            limit: At most this many.
            offset: Skip this many first.

        Returns:
            The matching runs.

        Raises:
            ConfigurationError: A filter value is not valid.
        """
        try:
            query = RunQuery(
                status=None if status is None else RunStatus(status),
                agent=agent,
                error_class=None if error_class is None else ErrorClass(error_class),
                since=since,
                parent_run_id=parent_run_id,
                limit=limit,
                offset=offset,
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"{exc}; statuses: {[s.value for s in RunStatus]}, error classes: "
                f"{[c.value for c in ErrorClass]}"
            ) from exc
        if limit < 0 or offset < 0:
            raise ConfigurationError("limit and offset must be >= 0")
        return self._rt.store.list_runs(query)

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """Return a run's attempts in order (raises RunNotFoundError for an unknown id)."""
        self._rt.get_run(run_id)
        return self._rt.store.list_attempts(run_id)

    def steps(self, run_id: str) -> list[Step]:
        """Return a run's journal with decoded payloads (raises RunNotFoundError)."""
        store = self._rt.store
        self._rt.get_run(run_id)
        records = store.load_steps(run_id)
        refs = _payload.column_refs(records)
        cache = dict(store.get_blobs(refs)) if refs else {}

        def fetch(hashes: list[str]) -> Mapping[str, _payload.Blob]:
            missing = [h for h in hashes if h not in cache]
            if missing:
                cache.update(store.get_blobs(missing))
            return cache

        return [
            Step(
                record=record,
                request=_payload.unpack(record.request, fetch),
                response=None
                if record.response is None
                else _payload.unpack(record.response, fetch),
            )
            for record in records
        ]

    def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        """Return a run's artifacts as the ledger records them (raises RunNotFoundError)."""
        self._rt.get_run(run_id)
        return self._rt.store.list_artifacts(run_id)

    def compensations(self, run_id: str) -> list[CompensationRecord]:
        """Return the compensations a run ran, newest step first (raises RunNotFoundError)."""
        self._rt.get_run(run_id)
        return self._rt.store.list_compensations(run_id)

    def verdicts(self, run_id: str) -> list[VerdictRecord]:
        """Return every verifier verdict of a run, in order (raises RunNotFoundError)."""
        self._rt.get_run(run_id)
        return self._rt.store.list_verdicts(run_id)

    def inputs(self, run_id: str) -> dict[str, Any]:
        """Return a run's input snapshot (raises RunNotFoundError)."""
        return self._rt.inputs_of(run_id)

    def output(self, run_id: str) -> Any:
        """Return a run's recorded output (``None`` when it has none)."""
        return self._rt.output_of(run_id)

    def result(self, run_id: str, *, output: Any = MISSING, agent: str | None = None) -> RunResult:
        """Build the :class:`~seawall.RunResult` of a run from the ledger."""
        return self._rt.result_of(run_id, output=output, agent=agent)

    def alerts(
        self,
        *,
        agent: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AlertRecord]:
        """Alerts recorded in the ledger (by every process), newest first.

        Args:
            agent: Only alerts about this agent.
            kind: Only this kind (``drift``, ``breaker_open``, ``dlq_growth``,
                ``handoff_waiting``, ``run_overdue``).
            since: Only alerts raised at or after this Unix time.
            limit: At most this many.
        """
        self._rt.monitor.flush()
        return self._rt.store.list_alerts(agent=agent, kind=kind, since=since, limit=limit)

    def drift_report(self, agent: Callable[..., Any] | str) -> DriftReport:
        """Evaluate a watched agent's drift now, from the ledger (alerting as usual).

        Raises:
            RegistrationError: The agent is not registered.
            ConfigurationError: It has no ``drift=`` watch.
        """
        spec = self._rt.registry.agent(agent)
        if spec.drift is None:
            raise ConfigurationError(
                f"agent {spec.name!r} is not watched for drift; register it with "
                "@app.agent(drift=seawall.DriftWatch(...))"
            )
        self._rt.monitor.flush()
        return self._rt.monitor.evaluate(spec.name, spec.drift)


__all__ = ["LedgerReads", "Step"]
