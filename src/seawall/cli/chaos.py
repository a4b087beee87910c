"""``seawall chaos run``: a workload under a fault plan, with a report and invariant checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from seawall import SeawallError
from seawall.chaos import ChaosReport, run_session
from seawall.cli._inputs import JsonOption  # noqa: TC001 - typer reads annotations at run time
from seawall.cli._output import Column, console, fail, print_json, print_table, text

chaos = typer.Typer(
    name="chaos",
    help="Prove your workflow recovers: run it under a fault plan.",
    no_args_is_help=True,
)


@chaos.command("run")
def run(
    target: Annotated[
        str,
        typer.Argument(help="Your agent or graph as module:attribute (the module defines `app`)."),
    ],
    plan: Annotated[
        Path, typer.Option("--plan", help="The fault plan (TOML, or YAML with PyYAML).")
    ],
    runs: Annotated[int, typer.Option(min=1, help="Runs of the target.")] = 10,
    seed: Annotated[int | None, typer.Option(help="Override the plan's seed.")] = None,
    inputs: Annotated[
        str, typer.Option(help="The target's inputs as JSON (a list: one item per run, in turn).")
    ] = "{}",
    lease: Annotated[
        float, typer.Option(help="Lease seconds in the children (short: crashes resume fast).")
    ] = 1.0,
    workdir: Annotated[Path, typer.Option(help="Where the session's log goes.")] = Path(
        ".seawall/chaos"
    ),
    as_json: JsonOption = False,
) -> None:
    """Run a workload under a fault plan; report each fault's recovery; check the invariants.

    The workload runs in child processes, restarted after injected crashes; exits 1 when an
    invariant is broken.
    """
    try:
        plan_path = plan
        if seed is not None:
            from seawall.chaos import FaultPlan  # noqa: PLC0415

            loaded = FaultPlan.load(plan)
            plan_path = workdir / "plan-with-seed.json.toml"
            workdir.mkdir(parents=True, exist_ok=True)
            plan_path.write_text(_toml(loaded, seed))
        report = run_session(
            target,
            str(plan_path),
            runs=runs,
            workdir=workdir,
            inputs=json.loads(inputs),
            lease=lease,
            progress=None if as_json else _progress,
        )
    except SeawallError as exc:
        raise fail(exc) from exc
    except (RuntimeError, ValueError) as exc:
        console.print(f"[bold red]error[/]: {escape(str(exc))}")
        raise typer.Exit(code=2) from exc
    if as_json:
        print_json(report.to_dict())
    else:
        print_report(report)
    if not report.ok:
        raise typer.Exit(code=1)


def _progress(message: str) -> None:
    console.print(text(message))


def print_report(report: ChaosReport) -> None:
    """The report for people."""
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(report.statuses.items()))
    console.print(
        text(f"{report.runs} runs ({statuses}); {report.restarts} restart(s) after crashes")
    )
    if report.faults:
        print_table(
            "Injected faults",
            (
                Column("target"),
                Column("fault"),
                Column("call", drop=1, justify="right"),
                Column("class"),
                Column("recovery", wrap=True),
                Column("run ended"),
            ),
            [
                [
                    text(f["target"]),
                    text(f["kind"]),
                    text(f["call"]),
                    text(f["class"]),
                    text(f["recovery"]),
                    text(f["final_status"] or "-"),
                ]
                for f in report.faults
            ],
        )
    for name, check in report.invariants.items():
        mark = Text("holds", style="green") if check["ok"] else Text("BROKEN", style="bold red")
        details = {k: v for k, v in check.items() if k != "ok" and v}
        console.print(
            text(f"invariant {name}: "),
            mark,
            text(f"  {json.dumps(details)}" if not check["ok"] else ""),
            sep="",
        )


def _toml(plan: object, seed: int) -> str:
    from seawall.chaos import FaultPlan  # noqa: PLC0415

    assert isinstance(plan, FaultPlan)  # noqa: S101
    lines = [f"seed = {seed}"]
    for fault in plan.faults:
        lines.append("[[fault]]")
        for key in ("target", "kind", "on_call", "probability", "times", "delay", "value"):
            value = getattr(fault, key)
            if value is not None:
                lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"
