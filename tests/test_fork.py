"""After ``reopen_after_fork()`` in a real forked child: every alert fires, every connection is new."""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import TYPE_CHECKING, Any

import pytest

from seawall import AlertRecord, AlertRules, DriftWatch, Guards, Retry, Seawall, verify
from seawall.ledger.postgres import PostgresStore
from seawall.ledger.sqlite import SQLiteStore
from seawall.observe.alerts import KINDS
from seawall.testing import no_waits

if TYPE_CHECKING:
    from pathlib import Path

    from seawall.runtime.services import Runtime

LEDGERS = ("sqlite", "postgres")
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _stores(rt: Runtime) -> list[object]:
    """Every store the runtime's services hold (one attribute deep)."""
    kinds = (SQLiteStore, PostgresStore)
    found: list[object] = []
    for service in vars(rt).values():
        if isinstance(service, kinds):
            found.append(service)
            continue
        fields = getattr(service, "__dict__", None) or {
            name: getattr(service, name, None) for name in getattr(service, "__slots__", ())
        }
        found += [value for value in fields.values() if isinstance(value, kinds)]
    return found


def _build(ledger_url: str, received: list[AlertRecord]) -> Seawall:
    app = Seawall(
        ledger_url,
        lease=0.3,
        alerts=[received.append],
        alert_rules=AlertRules(dlq_growth=2),
    )

    @app.agent(name="plain")
    def plain(ctx: Any) -> str:
        return "ok"

    @app.agent(name="flaky", retry=Retry(attempts=1))
    def flaky(ctx: Any) -> None:
        raise ValueError("upstream is down")

    @app.agent(
        name="writer",
        verify=verify.rule(lambda out: out == "good", "must be good"),
        on_drift="handoff",
    )
    def writer(ctx: Any) -> str:
        return "bad"

    @app.agent(name="slow", guards=Guards(deadline=0.1))
    def slow(ctx: Any) -> str:
        time.sleep(1.0)
        return "late"

    @app.agent(
        name="triage",
        drift=DriftWatch(
            decision="action", features=(), reference=20, window=10, every=5, min_samples=10
        ),
    )
    def triage(ctx: Any, shifted: bool) -> dict[str, str]:
        return {"action": "escalate" if shifted else "resolve"}

    return app


def _in_child(app: Seawall, received: list[AlertRecord], parent_store: object) -> dict[str, Any]:
    """What the forked child sees after reopen_after_fork(), and the alerts it raises."""
    app.reopen_after_fork()
    rt = app.runtime
    stores = _stores(rt)
    report: dict[str, Any] = {
        "stores_are_the_childs": all(store is rt.store for store in stores),
        "services_with_a_store": len(stores),
        "store_is_new": rt.store is not parent_store and app.store is rt.store,
        "lease_owner_is_the_childs": f":{os.getpid()}:" in rt.leases.owner,
    }
    for _ in range(3):
        app.run("flaky")
    app.run("writer")
    app.run("slow")
    for i in range(40):
        app.run("triage", shifted=i >= 20)
    rt.monitor.flush()
    report["delivered"] = sorted({alert.kind for alert in received})
    report["recorded"] = sorted({alert.kind for alert in app.ledger.alerts(limit=1000)})
    return report


def test_a_forked_child_reopens_every_service(ledger_url: str, tmp_path: Path) -> None:
    """In a forked child every alert kind still fires and every service uses the child's store."""
    out = tmp_path / "child.json"
    received: list[AlertRecord] = []
    with no_waits():
        app = _build(ledger_url, received)
        try:
            app.run("plain")  # the parent has used its connection, loop and threads
            parent_store = app.store
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child's report is what is checked
                code = 0
                try:
                    report = _in_child(app, received, parent_store)
                except BaseException as exc:  # reported to the parent
                    report, code = {"error": repr(exc)}, 1
                out.write_text(json.dumps(report))
                os._exit(code)
            _, status = os.waitpid(pid, 0)
        finally:
            app.close()
    report = json.loads(out.read_text())
    assert 0 == os.waitstatus_to_exitcode(status), report
    assert {
        "stores_are_the_childs": True,
        "store_is_new": True,
        "lease_owner_is_the_childs": True,
        "delivered": sorted(KINDS),
        "recorded": sorted(KINDS),
    } == {key: value for key, value in report.items() if key != "services_with_a_store"}
    assert report["services_with_a_store"] >= 5
