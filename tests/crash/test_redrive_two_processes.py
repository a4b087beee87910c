"""Two redrivers in two processes drain one dead-letter queue: each entry is redriven once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from seawall import Retry, Seawall

APP = """
import json, os, sys, time
from pathlib import Path
from seawall import Retry, Seawall

work = Path(os.environ["REDRIVE_WORK"])
app = Seawall(f"sqlite:///{work / 'ledger.db'}", retry=Retry(attempts=1), busy_timeout=30)
fixed = (work / "fixed").exists()

@app.tool(mutating=True)
def record(item):
    time.sleep(0.01)
    with (work / "effects.log").open("a") as handle:
        handle.write(json.dumps({"item": item, "pid": os.getpid()}) + "\\n")
    return item

@app.agent(name="flaky", breaker=False)
def flaky(ctx, item):
    if not fixed:
        raise ValueError("the bug")
    return ctx.call(record, item)

if __name__ == "__main__":
    outcomes = app.dlq.redrive()
    print(json.dumps([o.entry.entry_id for o in outcomes]))
    app.close()
"""


def test_two_concurrent_redrivers_redrive_each_entry_exactly_once(
    tmp_path: Path, monkeypatch
) -> None:
    """100 failed runs, two redriver processes at once: 100 redrives, no entry twice."""
    script = tmp_path / "redrive_app.py"
    script.write_text(APP)
    monkeypatch.setenv("REDRIVE_WORK", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    import redrive_app  # the buggy version: every run fails

    try:
        results = [redrive_app.app.run("flaky", item=i) for i in range(100)]
        assert {"failed"} == {r.status.value for r in results}
        assert 100 == len(redrive_app.app.dlq.list())
    finally:
        redrive_app.app.close()
        sys.modules.pop("redrive_app", None)
    (tmp_path / "fixed").touch()
    procs = [
        subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    claimed = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert [0, 0] == [p.returncode for p in procs]
    assert 100 == len(claimed[0]) + len(claimed[1])
    assert not set(claimed[0]) & set(claimed[1])
    assert all(claimed), "both redrivers should have taken entries (they ran at the same time)"
    effects = [json.loads(line) for line in (tmp_path / "effects.log").read_text().splitlines()]
    assert sorted(range(100)) == sorted(e["item"] for e in effects)
    app = Seawall(f"sqlite:///{tmp_path / 'ledger.db'}", retry=Retry(attempts=1))
    try:
        entries = app.dlq.list(status=None, limit=1000)
        assert 100 == len(entries)
        assert {"redriven"} == {e.status for e in entries}
        assert {"succeeded"} == {e.result for e in entries}
    finally:
        app.close()
