"""``seawall demo``: the embedded demo, a graph under a chaos plan, on SQLite, offline.

It ends with commands to try next. Each works when pasted into the shell the demo ran in, from
the same folder: it names the ledger (``--ledger``), runs the ``seawall`` that ran the demo (by
its path when that one is not on ``PATH``), and is laid out within the terminal's width.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from seawall.cli._inputs import LedgerOption, ledger_url
from seawall.cli._output import Column, console, id_note, print_table, short_ids, status_text, text

if TYPE_CHECKING:
    from seawall import RunRecord, Seawall
    from seawall.chaos import ChaosReport

DEFAULT_WORKDIR = Path(".seawall/demo")


def demo(
    ledger: LedgerOption = None,
    workdir: Annotated[
        Path, typer.Option(help="Where the demo's tools write (notifications, articles).")
    ] = DEFAULT_WORKDIR,
    model: Annotated[
        str | None,
        typer.Option(help="A model name for the OpenAI-compatible endpoint in OPENAI_BASE_URL."),
    ] = None,
) -> None:
    """Run research → draft → review → publish under chaos that hits all four failure classes."""
    from seawall.chaos import run_session  # noqa: PLC0415 - keeps `seawall --help` fast

    given_workdir = workdir
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
    console.print(Text.assemble(("Seawall demo", "bold"), " on the ledger ", (url, "cyan")))
    console.print(text(f"model: {_demo.MODEL if online else _demo.OFFLINE_MODEL}"))
    console.print(text("graph: research → draft → review → publish, 4 runs, under a chaos plan\n"))
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
            progress=lambda message: status.update(Text(message)),
        )
    _summary(report, url, workdir, given_workdir)
    if sys.stdout.isatty():
        console.print()


def _summary(report: ChaosReport, url: str, workdir: Path, given_workdir: Path) -> None:
    from seawall import Seawall  # noqa: PLC0415

    print_table(
        "Injected faults and how they were recovered",
        (
            Column("fault", wrap=True),
            Column("class"),
            Column("recovery", wrap=True),
            Column("run ended"),
        ),
        [
            [
                text(f"{f['kind']} on {f['target']}"),
                text(f["class"]),
                text(f["recovery"]),
                status_text(f["final_status"] or "-"),
            ]
            for f in report.faults
        ],
    )
    app = Seawall(url)
    try:
        top = [
            r
            for r in app.ledger.runs(agent="publish", limit=report.runs * 3)
            if r.parent_run_id is None
        ]
        graphs = list(reversed(top[: report.runs]))
        _print_graphs(app, graphs)
        recovered = _recovered_graph(app, report, graphs)
    finally:
        app.close()
    broken = sorted({name for name, check in report.invariants.items() if not check["ok"]})
    if broken:
        console.print(Text(f"invariants broken: {', '.join(broken)}", style="bold red"))
        raise typer.Exit(code=1)
    console.print(
        text(
            "Invariants held in every run: nothing lost, no duplicate side effects, "
            "no partial artifacts visible, no unverified commits."
        )
    )
    console.print(text(f"Published articles are in {workdir / 'published'}.\n"))
    failed = next((g for g in graphs if g.status.value == "failed"), None)
    _print_hints(url, given_workdir, failed, recovered)


def _print_graphs(app: Seawall, graphs: list[RunRecord]) -> None:
    shown = short_ids(app, "run", (run.run_id for run in graphs))
    rows = []
    for run in graphs:
        nodes = sorted(
            app.ledger.runs(parent_run_id=run.run_id, limit=50), key=lambda n: n.start_time
        )
        rows.append(
            [
                text(shown[run.run_id]),
                status_text(run.status.value),
                text(run.error_class.value if run.error_class else ""),
                text(", ".join(f"{n.node}:{n.status.value}" for n in nodes)),
                text(run.tokens_used),
                text(f"{run.cost_usd or 0:.4f}"),
            ]
        )
    print_table(
        "Graph runs",
        (
            Column("run id"),
            Column("status"),
            Column("class"),
            Column("nodes", wrap=True),
            Column("tokens", drop=2, justify="right"),
            Column("cost $", drop=1, justify="right"),
        ),
        rows,
        id_note(shown),
    )


def _recovered_graph(app: Seawall, report: ChaosReport, graphs: list[RunRecord]) -> str | None:
    """The graph run that recovered from the crash after a side effect (partial write)."""
    ids = {g.run_id for g in graphs}
    for fault in report.faults:
        run = app.store.get_run(fault["run_id"]) if fault.get("run_id") else None
        if fault["class"] == "partial_write" and run is not None and run.parent_run_id in ids:
            return run.parent_run_id
    return next((g.run_id for g in graphs if g.status.value == "succeeded"), None)


def _print_hints(url: str, workdir: Path, failed: RunRecord | None, recovered: str | None) -> None:
    """Commands to try next, each ready to paste into this shell, in this folder."""
    seawall = _seawall_command()
    env = (
        [] if workdir == DEFAULT_WORKDIR else [f"SEAWALL_DEMO_WORKDIR={shlex.quote(str(workdir))}"]
    )
    ledger = ["--ledger", url]
    app = ["--app", "seawall._demo:app"]
    hints: list[tuple[str, list[str]]] = [
        ("every run, newest first:", [*seawall, "runs", *ledger]),
    ]
    if failed is not None:
        hints.append(
            ("the failed graph run, step by step:", [*seawall, "show", failed.run_id, *ledger])
        )
    hints.append(("the dead-letter queue:", [*seawall, "dlq", "list", *ledger]))
    if recovered is not None:
        hints.append(
            (
                "replay the run that survived a crash, from its journal (nothing runs again):",
                [*env, *seawall, "replay", recovered, *app, *ledger, "--recorded"],
            )
        )
    if failed is not None:
        hints.append(
            (
                "re-run the failed run for real, now that its fault is gone:",
                [*env, *seawall, "replay", failed.run_id, *app, *ledger, "--live"],
            )
        )
    console.print(text("Next, try (from this folder):"))
    for words, command in hints:
        console.print(text(f"  # {words}", style="dim"))
        console.print(text(_shell_lines(command, console.width)), soft_wrap=True)
    if seawall[0] != "seawall":
        activate = Path(seawall[0]).parent / "activate"
        if activate.exists():
            console.print(
                text(f"  # to type just `seawall`: . {shlex.quote(_relative(activate))}", "dim")
            )


def _shell_lines(words: list[str], width: int, indent: str = "  ") -> str:
    """``words`` as a shell command continued with backslashes to fit ``width`` columns.

    An option stays on one line with its value.
    """
    quoted = [w if "=" in w and not w.startswith("-") else shlex.quote(w) for w in words]
    units: list[str] = []
    for word in quoted:
        if units and units[-1].startswith("--") and " " not in units[-1] and word[0] != "-":
            units[-1] += f" {word}"
        else:
            units.append(word)
    lines: list[str] = []
    current = indent + units[0]
    for unit in units[1:]:
        if len(current) + 1 + len(unit) + 2 > width:
            lines.append(current + " \\")
            current = indent + "    " + unit
        else:
            current += f" {unit}"
    lines.append(current)
    return "\n".join(lines)


def _seawall_command() -> list[str]:
    """How to run the ``seawall`` that runs now: its name when ``PATH`` finds it, else its path."""
    candidates = [Path(sys.argv[0]), Path(sys.executable).parent / "seawall"]
    for script in candidates:
        if script.name == "seawall" and script.is_file():
            found = shutil.which("seawall")
            if found is not None and Path(found).resolve() == script.resolve():
                return ["seawall"]
            return [_relative(script)]
    return [_relative(Path(sys.executable)), "-m", "seawall"]


def _relative(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it, else absolute."""
    absolute = path.absolute()
    try:
        relative = absolute.relative_to(Path.cwd())
    except ValueError:
        return str(absolute)
    return str(relative) if str(relative).startswith(".") else f"./{relative}"
