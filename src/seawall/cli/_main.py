"""The ``seawall`` command group."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from seawall import SeawallError, __version__
from seawall.cli import chaos, dashboard, demo, drift, gc, migrate, operators, replays, resume, runs
from seawall.cli._output import fail


class _Commands(TyperGroup):
    """The command group: a Seawall error from any command is its message and exit code 1."""

    # ``ctx`` is click's Context, which typer vendors from 0.29 on: typed loosely for both.
    def invoke(self, ctx: Any) -> Any:
        """Run the command; report a :class:`~seawall.SeawallError` on stderr instead of a trace."""
        try:
            return super().invoke(ctx)
        except SeawallError as exc:
            raise fail(exc) from exc


cli = typer.Typer(
    cls=_Commands,
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
