"""The ``seawall`` command group."""

from __future__ import annotations

from typing import Annotated

import typer

from seawall import __version__
from seawall.cli import chaos, dashboard, demo, drift, gc, migrate, operators, replays, resume, runs

cli = typer.Typer(
    name="seawall",
    help="Seawall: make LLM agents fail safely. Inspect the run ledger and recover runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"seawall {__version__}")
        raise typer.Exit


@cli.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """Seawall: make LLM agents fail safely. Inspect the run ledger and recover runs."""


cli.command("runs")(runs.runs)
cli.command("show")(runs.show)
cli.command("resume")(resume.resume)
cli.command("gc")(gc.gc)
cli.command("cancel")(operators.cancel)
cli.command("replay")(replays.replay)
cli.add_typer(replays.dlq, name="dlq")
cli.add_typer(chaos.chaos, name="chaos")
cli.add_typer(operators.handoffs, name="handoffs")
cli.add_typer(operators.breakers, name="breakers")
cli.command("demo")(demo.demo)
cli.command("drift")(drift.drift)
cli.command("migrate")(migrate.migrate)
cli.command("metrics")(dashboard.metrics)
cli.command("dashboard")(dashboard.dashboard)


def main() -> None:
    """Run the ``seawall`` command line."""
    cli()
