"""Several processes share one SQLite ledger without "database is locked" reaching the user."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seawall import RunStatus, Seawall

WRITER = """
import sys
from seawall import Guards, Seawall
app = Seawall(sys.argv[1], busy_timeout=10)

@app.tool(mutating=True)
def write(i):
    return i

@app.tool
def read(i):
    return i

@app.agent(name="worker", guards=Guards(max_mutations_without_gate=None))
def worker(ctx, n):
    for i in range(n):
        ctx.call(read, i)
        ctx.call(write, i)
    return n

bad = [r for r in (app.run(worker, n=10) for _ in range(int(sys.argv[2]))) if not r.ok]
print(len(bad), [r.error for r in bad][:1])
"""


def test_three_processes_write_one_ledger_concurrently(tmp_path: Path, ledger_url: str) -> None:
    """Three writer processes each record 40 runs of 20 steps; all succeed, nothing is lost."""
    Seawall(ledger_url).close()
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    children = [
        subprocess.Popen(
            [sys.executable, str(script), ledger_url, "40"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [0, 0, 0] == [child.returncode for child in children], outputs
    assert ["0 []"] * 3 == [out.strip() for out, _ in outputs]
    app = Seawall(ledger_url)
    try:
        runs = app.ledger.runs(limit=1000)
        assert 120 == len(runs)
        assert {RunStatus.SUCCEEDED} == {r.status for r in runs}
        assert all(len(app.ledger.steps(r.run_id)) == 20 for r in runs[:10])
    finally:
        app.close()
