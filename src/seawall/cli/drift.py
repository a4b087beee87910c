"""``seawall drift``: drift statistics of watched agents and the alerts in the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.text import Text

from seawall import DriftWatch
from seawall.cli._inputs import JsonOption, LedgerOption, open_app, parse_since
from seawall.cli._output import Column, console, iso, print_json, print_table, short_when, text
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
    since_at = parse_since(since)  # a bad --since is refused before the ledger is opened
    with open_app(ledger) as app:
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
        alerts = app.store.list_alerts(agent=agent, kind=kind, since=since_at, limit=limit)
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
            text(
                f"Agent {agent!r} is not watched for drift in this ledger (no app recorded a "
                "DriftWatch for it); register it with @app.agent(drift=seawall.DriftWatch(...))."
            )
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
        Text.assemble(
            (report.agent, "bold"),
            f": {report.samples} runs sampled; reference {report.reference}; "
            f"current {report.current}",
        )
    )
    if report.semantic is not None:
        _print_meaning(report)
    if not report.stats:
        if report.semantic is None:
            console.print(text("  still collecting the reference window; nothing compared yet\n"))
        return
    print_table(
        "",
        (
            Column("feature"),
            Column("test", drop=3),
            Column("PSI", justify="right"),
            Column("p-value", drop=2, justify="right"),
            Column("runs ref/cur", drop=4),
            Column("state"),
            Column("current", drop=1, wrap=True),
        ),
        [
            [
                text(stat.feature),
                text(stat.test),
                text("-" if stat.psi is None else f"{stat.psi:.3f}"),
                text("-" if stat.p_value is None else f"{stat.p_value:.2g}"),
                text(f"{stat.reference_n}/{stat.current_n}"),
                _state(stat, report.shifted),
                text(_shape(stat)),
            ]
            for stat in report.stats
        ],
    )
    limit = f"PSI >= {watch.psi:g}"
    if watch.method == "test":
        limit += f" and p < {watch.alpha:g}"
    console.print(text(f"  a shift is {limit}, on {watch.confirm} evaluations in a row\n"))


def _print_meaning(report: DriftReport) -> None:
    stat = cast("SemanticStat", report.semantic)
    semantic = cast("SemanticWatch", report.watch.semantic)
    state = _state_of(stat.shifted, alerted="semantic" in report.shifted)
    runs = f"runs ref/cur {stat.reference_n}/{stat.current_n}"
    if stat.shift is None:
        console.print(Text.assemble(f"  meaning ({stat.model}): ", state, f", {runs}"))
        return
    p_value = "" if stat.p_value is None else f", energy test p={stat.p_value:.2g}"
    console.print(
        Text.assemble(
            f"  meaning ({stat.model}): shift {stat.shift:.3f}{p_value}, {runs}: ",
            state,
            f" (a shift is >= {semantic.min_shift:g} with p < {semantic.alpha:g})",
        )
    )
    if stat.typical is not None:
        console.print(text(f"    typical reference output: {stat.typical.text!r}"))
    if stat.most_shifted:
        console.print(
            text("    most shifted recent outputs (similarity to the nearest reference one):")
        )
    for example in stat.most_shifted:
        console.print(text(f"      {example.similarity:.2f} {example.text!r}"))
    console.print()


def _state(stat: FeatureStat, shifted: tuple[str, ...]) -> Text:
    return _state_of(stat.shifted, alerted=stat.feature in shifted)


def _state_of(shifted: bool | None, *, alerted: bool) -> Text:
    if alerted:
        return Text("alerted", style="red")
    if shifted is None:
        return Text("too few runs", style="dim")
    return Text("shifting", style="yellow") if shifted else Text("stable", style="green")


def _shape(stat: FeatureStat) -> str:
    if stat.kind == "categorical":
        return ", ".join(f"{k} {v:.0%}" for k, v in list(stat.current.items())[:5])
    return ", ".join(f"{k} {v:.3g}" for k, v in stat.current.items())


def _print_alerts(alerts: list[AlertRecord]) -> None:
    if not alerts:
        console.print(text("No alerts."))
        return
    print_table(
        "alerts, newest first",
        (
            Column("at", drop=1),
            Column("kind"),
            Column("agent", drop=2),
            Column("feature", drop=3),
            Column("statistic", drop=4, justify="right"),
            Column("message", wrap=True),
        ),
        [
            [
                text(short_when(alert.at)),
                text(alert.kind),
                text(alert.agent or "-"),
                text(alert.feature or "-"),
                text("-" if alert.statistic is None else f"{alert.statistic:.3g}"),
                text(alert.message),
            ]
            for alert in alerts
        ],
    )
