"""``seawall demo``: the embedded demo, a graph under a chaos plan, on SQLite, offline."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from seawall.cli._common import LedgerOption, console, ledger_url


def demo(
    ledger: LedgerOption = None,
    workdir: Annotated[
        Path, typer.Option(help="Where the demo's tools write (notifications, articles).")
    ] = Path(".seawall/demo"),
    model: Annotated[
        str | None,
        typer.Option(help="A model name for the OpenAI-compatible endpoint in OPENAI_BASE_URL."),
    ] = None,
) -> None:
    """Run research → draft → review → publish under chaos that hits all four failure classes."""
    from seawall.chaos import run_session  # noqa: PLC0415 - keeps `seawall --help` fast

    workdir = workdir.absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    url = ledger_url(ledger)
    os.environ["SEAWALL_DEMO_LEDGER"] = url
    os.environ["SEAWALL_DEMO_WORKDIR"] = str(workdir)
    if model:
        os.environ["SEAWALL_DEMO_MODEL"] = model
    from seawall import _demo  # noqa: PLC0415 - reads the environment set just above

    plan = workdir / "chaos-plan.toml"
    plan.write_text(_demo.PLAN)
    online = bool(
        os.environ.get("OPENAI_BASE_URL") and os.environ.get("OPENAI_API_KEY") and _demo.MODEL
    )
    console.print(f"[bold]Seawall demo[/] on the ledger [cyan]{url}[/]")
    console.print(f"model: {_demo.MODEL if online else _demo.OFFLINE_MODEL}")
    console.print("graph: research → draft → review → publish, 4 runs, under a chaos plan\n")
    with console.status(
        f"publishing {len(_demo.TOPICS)} articles while faults are injected"
    ) as status:
        report = run_session(
            "seawall._demo:publish",
            str(plan),
            runs=len(_demo.TOPICS),
            workdir=workdir / "chaos",
            inputs=[{"topic": topic} for topic in _demo.TOPICS],
            lease=0.5,
            progress=status.update,
        )
    _summary([report], workdir)
    if sys.stdout.isatty():
        console.print()


def _summary(reports: list, workdir: Path) -> None:  # type: ignore[type-arg]
    from seawall import Seawall  # noqa: PLC0415

    faults = [f for report in reports for f in report.faults]
    table = Table(title="Injected faults and how they were recovered", title_justify="left")
    for column in ("fault", "target", "class", "recovery", "run ended"):
        table.add_column(column)
    for f in faults:
        table.add_row(f["kind"], f["target"], f["class"], f["recovery"], f["final_status"] or "-")
    console.print(table)
    app = Seawall(os.environ["SEAWALL_DEMO_LEDGER"])
    try:
        count = sum(report.runs for report in reports)
        top = [r for r in app.runs(agent="publish", limit=count * 3) if r.parent_run_id is None]
        graphs = top[:count]
        runs = Table(title="Graph runs", title_justify="left")
        for column in ("run id", "status", "class", "nodes", "tokens", "cost $"):
            runs.add_column(column)
        for run in reversed(graphs):
            nodes = app.runs(parent_run_id=run.run_id, limit=50)
            states = ", ".join(
                f"{n.node}:{n.status.value}" for n in sorted(nodes, key=lambda n: n.start_time)
            )
            runs.add_row(
                run.run_id,
                run.status.value,
                run.error_class.value if run.error_class else "",
                states,
                str(run.tokens_used),
                f"{run.cost_usd or 0:.4f}",
            )
        console.print(runs)
        example = graphs[0].run_id if graphs else "RUN_ID"
    finally:
        app.close()
    broken = [
        name for report in reports for name, check in report.invariants.items() if not check["ok"]
    ]
    if broken:
        console.print(f"[bold red]invariants broken: {sorted(set(broken))}[/]")
        raise typer.Exit(code=1)
    console.print(
        "Invariants held in every run: nothing lost, no duplicate side effects, "
        "no partial artifacts visible, no unverified commits."
    )
    console.print(f"Published articles are in {workdir / 'published'}.\n")
    console.print("Next, try:")
    console.print(f"  seawall runs --ledger {os.environ['SEAWALL_DEMO_LEDGER']}")
    console.print(f"  seawall show {example} --ledger {os.environ['SEAWALL_DEMO_LEDGER']}")
    console.print(f"  seawall dlq list --ledger {os.environ['SEAWALL_DEMO_LEDGER']}")
    console.print(f"  seawall replay {example} --app seawall._demo:app --recorded")
