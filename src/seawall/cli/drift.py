"""``seawall drift``: drift statistics of watched agents and the alerts in the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.markup import escape
from rich.table import Table

from seawall import DriftWatch
from seawall.cli._common import (
    JsonOption,
    LedgerOption,
    console,
    iso,
    open_app,
    parse_since,
    print_json,
    using,
    when,
)
from seawall.observe.alerts import KINDS, alert_json
from seawall.observe.evaluation import DriftReport, evaluate, watches_in

if TYPE_CHECKING:
    from seawall import AlertRecord
    from seawall.observe.drift import FeatureStat
    from seawall.observe.semantic import SemanticStat, SemanticWatch


def drift(
    agent: Annotated[
        str | None, typer.Option("--agent", help="Only this agent (default: every watched one).")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help=f"Only alerts of this kind ({', '.join(KINDS)})."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only alerts since an ISO time or an age (30m, 2h, 7d)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Alerts shown at most.")] = 20,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            help="Evaluate with 'test' (needs seawall[drift]) or 'psi' instead of the "
            "method the agent's app configured.",
        ),
    ] = None,
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the drift statistics of watched agents, evaluated now from the ledger, and alerts.

    Every process's runs count: the samples are in the ledger, and so is each agent's
    DriftWatch (recorded by the app that watches it). Evaluating here records nothing.
    """
    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"--kind must be one of {', '.join(KINDS)}")
    if method not in (None, "test", "psi"):
        raise typer.BadParameter("--method must be 'test' or 'psi'")
    with using(open_app(ledger)) as app:
        watches = watches_in(app.store)
        if agent is not None:
            watches = {agent: watches[agent]} if agent in watches else {}
        reports = [
            evaluate(
                app.store,
                name,
                DriftWatch.from_dict(data, method=method),  # type: ignore[arg-type]
                record=False,
            )
            for name, data in sorted(watches.items())
        ]
        alerts = app.store.list_alerts(
            agent=agent, kind=kind, since=parse_since(since), limit=limit
        )
    if as_json:
        print_json(
            {
                "agents": [_report_json(r) for r in reports],
                "alerts": [_alert_json(a) for a in alerts],
            }
        )
        return
    if agent is not None and not reports:
        console.print(
            f"Agent {agent!r} is not watched for drift in this ledger (no app recorded a "
            "DriftWatch for it); register it with @app.agent(drift=seawall.DriftWatch(...))."
        )
    for report in reports:
        _print_report(report)
    _print_alerts(alerts)


def _report_json(report: DriftReport) -> dict[str, Any]:
    data = report.to_dict()
    data["at"] = iso(report.at)
    return data


def _alert_json(alert: AlertRecord) -> dict[str, Any]:
    data = alert_json(alert)
    data["at"] = iso(alert.at)
    return data


def _print_report(report: DriftReport) -> None:
    watch = report.watch
    console.print(
        f"[bold]{escape(report.agent)}[/]: {report.samples} runs sampled; reference "
        f"{report.reference}; current {report.current}",
        highlight=False,
    )
    if report.semantic is not None:
        _print_meaning(report)
    if not report.stats:
        if report.semantic is None:
            console.print("  still collecting the reference window; nothing compared yet\n")
        return
    table = Table(show_edge=False)
    for column in ("feature", "test", "PSI", "p-value", "runs ref/cur", "state", "current"):
        table.add_column(column)
    for stat in report.stats:
        table.add_row(
            escape(stat.feature),
            stat.test,
            "-" if stat.psi is None else f"{stat.psi:.3f}",
            "-" if stat.p_value is None else f"{stat.p_value:.2g}",
            f"{stat.reference_n}/{stat.current_n}",
            _state(stat.shifted, stat.feature in report.shifted),
            escape(_shape(stat)),
        )
    console.print(table)
    limit = f"PSI >= {watch.psi:g}"
    if watch.method == "test":
        limit += f" and p < {watch.alpha:g}"
    console.print(f"  a shift is {limit}, on {watch.confirm} evaluations in a row\n")


def _print_meaning(report: DriftReport) -> None:
    stat = cast("SemanticStat", report.semantic)
    semantic = cast("SemanticWatch", report.watch.semantic)
    state = _state(stat.shifted, "semantic" in report.shifted)
    runs = f"runs ref/cur {stat.reference_n}/{stat.current_n}"
    if stat.shift is None:
        console.print(f"  meaning ({escape(stat.model)}): {state}, {runs}", highlight=False)
        return
    p_value = "" if stat.p_value is None else f", energy test p={stat.p_value:.2g}"
    console.print(
        f"  meaning ({escape(stat.model)}): shift {stat.shift:.3f}{p_value}, {runs}: {state} "
        f"(a shift is >= {semantic.min_shift:g} with p < {semantic.alpha:g})",
        highlight=False,
    )
    if stat.typical is not None:
        console.print(f"    typical reference output: {escape(repr(stat.typical.text))}")
    if stat.most_shifted:
        console.print("    most shifted recent outputs (similarity to the nearest reference one):")
    for example in stat.most_shifted:
        console.print(f"      {example.similarity:.2f} {escape(repr(example.text))}")
    console.print()


def _state(shifted: bool | None, alerted: bool) -> str:
    if alerted:
        return "[red]alerted[/]"
    if shifted is None:
        return "[dim]too few runs[/]"
    return "[yellow]shifting[/]" if shifted else "[green]stable[/]"


def _shape(stat: FeatureStat) -> str:
    if stat.kind == "categorical":
        return ", ".join(f"{k} {v:.0%}" for k, v in list(stat.current.items())[:5])
    return ", ".join(f"{k} {v:.3g}" for k, v in stat.current.items())


def _print_alerts(alerts: list[AlertRecord]) -> None:
    if not alerts:
        console.print("No alerts.")
        return
    table = Table(show_edge=False, title="alerts, newest first")
    for column in ("at", "kind", "agent", "feature", "statistic", "message"):
        table.add_column(column, overflow="fold")
    for alert in alerts:
        table.add_row(
            when(alert.at),
            alert.kind,
            escape(alert.agent or "-"),
            escape(alert.feature or "-"),
            "-" if alert.statistic is None else f"{alert.statistic:.3g}",
            escape(alert.message),
        )
    console.print(table)
