"""Redrive leaves entries it cannot run; a successful live replay settles the entry."""

from __future__ import annotations

from seawall import Context, Retry, Seawall


def test_redrive_by_an_app_without_the_agent_leaves_the_entry_pending(ledger_url: str) -> None:
    """An app that does not register the entry's agent gives the claim back."""
    app = Seawall(ledger_url, retry=Retry(attempts=1))

    @app.agent(name="buggy")
    def buggy(ctx: Context) -> None:
        raise ValueError("bug")

    failed = app.run(buggy)
    app.close()
    other = Seawall(ledger_url)
    try:
        [outcome] = other.dlq.redrive()
        assert ("error", None) == (outcome.status, outcome.run_id)
        [entry] = other.dlq.list()
        assert (failed.run_id, "pending") == (entry.run_id, entry.status)
    finally:
        other.close()


def test_successful_live_replay_settles_the_dead_letter(app: Seawall) -> None:
    """After a fix, a live replay that succeeds marks the failed run's entry redriven."""
    fixed = {"yes": False}

    @app.agent(retry=Retry(attempts=1))
    def flaky(ctx: Context) -> str:
        if not fixed["yes"]:
            raise ValueError("bug")
        return "ok"

    failed = app.run(flaky)
    fixed["yes"] = True
    replayed = app.replay(failed.run_id, mode="live")
    assert replayed.ok
    assert [] == app.dlq.list()
    [entry] = app.dlq.list(status="redriven")
    assert (replayed.run.run_id, "succeeded") == (entry.redrive_run_id, entry.result)
    assert [] == app.dlq.redrive()
