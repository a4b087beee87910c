"""A four-node graph for crash tests: a -> b -> c and a -> d; c SIGKILLs its process once."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from seawall import Context, From, Graph, Input, Seawall


def build(ledger: str, work: Path) -> tuple[Seawall, Graph]:
    app = Seawall(ledger, lease=0.5)

    def log(name: str) -> None:
        with (work / "ran.log").open("a") as handle:
            handle.write(name + "\n")

    @app.agent
    def a(ctx: Context, x: int) -> int:
        log("a")
        return x + 1

    @app.agent
    def b(ctx: Context, x: int) -> int:
        log("b")
        return x * 10

    @app.agent
    def c(ctx: Context, x: int) -> int:
        marker = work / "kill-c"
        if marker.exists():
            marker.unlink()
            signal.pthread_kill(threading.get_ident(), signal.SIGKILL)  # this thread, at once
        log("c")
        return x + 5

    @app.agent
    def d(ctx: Context, x: int) -> int:
        log("d")
        return -x

    graph = Graph("chain", max_concurrency=1)
    graph.add(a, inputs={"x": Input("x")})
    graph.add(b, inputs={"x": From("a")})
    graph.add(d, inputs={"x": From("a")})
    graph.add(c, inputs={"x": From("b")})
    app.graph(graph)
    return app, graph


if __name__ == "__main__":
    work_dir = Path(sys.argv[2])
    (work_dir / "kill-c").touch()
    child_app, child_graph = build(sys.argv[1], work_dir)
    child_app.run(child_graph, x=1)
