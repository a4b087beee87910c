"""Found by the fault matrix (``make soak``, PostgreSQL schedule ``--seed 1 --only 179``): the
ledger went away just after a run's end was recorded, and the agent breaker's count of that
outcome raised out of ``app.run`` instead of returning the run's recorded result."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall import Context, FailureCause, LedgerLockedError, PermanentError, RunStatus, Seawall
from seawall.ledger import SQLiteStore

pytestmark = pytest.mark.crash


class LosesTheLedgerAfterTheRun(SQLiteStore):
    """A SQLite ledger that becomes unreachable once a run has ended (before its breaker count)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.away = False

    def finish_run(self, *args: object, **kwargs: object) -> None:
        super().finish_run(*args, **kwargs)  # type: ignore[arg-type]
        self.away = True

    def update_breaker(self, *args: object, **kwargs: object) -> object:
        if self.away:
            raise LedgerLockedError("the ledger stayed locked (test)", path=self.path)
        return super().update_breaker(*args, **kwargs)  # type: ignore[arg-type]


def test_a_ledger_lost_after_the_run_ended_does_not_make_run_raise(tmp_path: Path) -> None:
    """app.run returns the recorded failure; the breaker's missed count is only logged."""
    store = LosesTheLedgerAfterTheRun(str(tmp_path / "ledger.db"))
    app = Seawall(store)

    @app.agent
    def refuses(ctx: Context) -> str:
        raise PermanentError("no")

    try:
        result = app.run(refuses)
        assert (RunStatus.FAILED, FailureCause.EXCEPTION) == (result.status, result.failure_cause)
        store.away = False
        assert RunStatus.FAILED == app.ledger.run(result.run_id).status
    finally:
        app.close()
