"""Per-step cost of this checkout against an earlier revision, measured in the same run.

A change to the engine must not make a journaled step dearer (issues ask for "within 10% / 5% of
before"). Timing two checkouts on different days compares two machines; this benchmark exports
the base revision (``git archive``) into a temp folder and times both trees in interleaved,
shuffled rounds, each measurement in a fresh interpreter whose ``PYTHONPATH`` points at that
tree's ``src``. It reports, per kind of step, the CPU time of the agent's thread (what the code
costs, steadier than wall time on a shared machine) and the wall time, as medians over rounds.

The workload uses only public API that both trees have: a sync agent making N sequential calls of
a ~100-byte read-only tool, of a mutating tool (``durability="crash"``), and of a mutating tool at
``durability="power"`` (one fsync per intent).

Usage::

    python -m benchmarks.bench_revisions --base 2b02502          # this checkout vs that commit
    python -m benchmarks.bench_revisions --base main --rounds 8 --steps 5000 --tolerance 0.05
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from benchmarks._harness import REPO_ROOT

KINDS = (("read", "crash"), ("write", "crash"), ("write", "power"))
"""Each kind of step timed: (tool kind, durability level)."""

WORKER = r"""
import sys, tempfile, time
from seawall import Guards, Seawall

kind, durability, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def body(i):
    return {"i": i, "payload": "x" * 80}

with tempfile.TemporaryDirectory() as folder:
    app = Seawall(f"sqlite:///{folder}/ledger.db", durability=durability)
    tool = app.tool(name="step", mutating=kind == "write")(body)

    @app.agent(name="steps", guards=Guards(max_mutations_without_gate=None))
    def steps(ctx, count):
        cpu, wall = time.thread_time(), time.perf_counter()
        for i in range(count):
            ctx.call(tool, i)
        return [time.thread_time() - cpu, time.perf_counter() - wall]

    app.run(steps, count=50)  # warm-up: imports, statements prepared, pages cached
    cpu, wall = app.run(steps, count=n).output
    app.close()
print(f"{cpu * 1e6 / n:.3f} {wall * 1e6 / n:.3f}")
"""


def export(revision: str, into: Path) -> Path:
    """Write ``revision``'s files into ``into`` (``git archive``); return the tree's root."""
    archive = into / "base.tar"
    with archive.open("wb") as out:
        subprocess.run(
            ["git", "archive", "--format=tar", revision], cwd=REPO_ROOT, stdout=out, check=True
        )
    root = into / "base"
    root.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root


def measure(tree: Path, kind: str, durability: str, steps: int) -> tuple[float, float]:
    """One measurement of ``tree``: (CPU µs, wall µs) per step."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, kind, durability, str(steps)],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the worker failed in {tree}:\n{done.stderr[-3000:]}")
    cpu, wall = done.stdout.split()[-2:]
    return float(cpu), float(wall)


def main(argv: list[str] | None = None) -> int:
    """Time both trees; print the table; exit non-zero when a kind is over the tolerance."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the revision to compare with (git rev)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--tolerance", type=float, default=0.10, help="allowed CPU increase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-revisions-") as folder:
        trees = {"base": export(args.base, Path(folder)), "this": REPO_ROOT}
        results: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            jobs = [(name, kind) for name in trees for kind in KINDS]
            rng.shuffle(jobs)
            for name, (kind, durability) in jobs:
                sample = measure(trees[name], kind, durability, args.steps)
                results.setdefault((name, kind, durability), []).append(sample)
    print(
        f"Per-step cost, this checkout vs {args.base} ({args.rounds} interleaved rounds of "
        f"{args.steps} steps; medians; CPU of the agent's thread and wall time, µs)"
    )
    print(
        f"{'step':<14}{'base cpu':>10}{'this cpu':>10}{'ratio':>7}{'base wall':>11}"
        f"{'this wall':>11}{'ratio':>7}"
    )
    over = False
    for kind, durability in KINDS:
        base = results[("base", kind, durability)]
        this = results[("this", kind, durability)]
        cpu = (statistics.median(s[0] for s in base), statistics.median(s[0] for s in this))
        wall = (statistics.median(s[1] for s in base), statistics.median(s[1] for s in this))
        ratio = cpu[1] / cpu[0]
        verdict = "ok" if ratio <= 1 + args.tolerance else "OVER"
        over |= verdict == "OVER"
        print(
            f"{kind + ' ' + durability:<14}{cpu[0]:>10.1f}{cpu[1]:>10.1f}{ratio:>7.2f}"
            f"{wall[0]:>11.1f}{wall[1]:>11.1f}{wall[1] / wall[0]:>7.2f}  [{verdict}]"
        )
    print(json.dumps({"base": args.base, "tolerance": args.tolerance, "over": over}))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
