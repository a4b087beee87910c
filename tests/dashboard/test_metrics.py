"""Prometheus metrics computed from the ledger: values after a known workload, and the CLI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from seawall import Seawall
    from tests.dashboard.workload import Seeded

pytest.importorskip("prometheus_client")


def _samples(text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        sample.name
        + "{"
        + ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
        + "}": sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metric_values_after_the_known_workload(seeded_app: tuple[Seawall, Seeded]) -> None:
    """Run outcomes, retries, tokens, cost, latency histograms, breakers and queues add up."""
    from seawall.observe.prometheus import exposition

    app, _ = seeded_app
    app.breakers.open("tool:search", reason="test")
    samples = _samples(exposition(app.store))
    assert (
        3
        == samples[
            "seawall_runs_total{gen_ai_agent_name=researcher,seawall_error_class=,seawall_status=succeeded}"
        ]
    )
    assert (
        1
        == samples[
            "seawall_runs_total{gen_ai_agent_name=flaky,seawall_error_class=clean_abort,seawall_status=failed}"
        ]
    )
    assert (
        1
        == samples[
            "seawall_runs_total{gen_ai_agent_name=writer,seawall_error_class=silent_drift,seawall_status=awaiting_human}"
        ]
    )
    assert (
        1
        == samples[
            "seawall_runs_total{gen_ai_agent_name=summarise,seawall_error_class=cascade,seawall_status=skipped}"
        ]
    )
    assert 1 == samples["seawall_retries_total{name=flaky,seawall_kind=attempt}"]
    assert (
        300 == samples["seawall_tokens_total{gen_ai_agent_name=researcher,gen_ai_token_type=input}"]
    )
    assert (
        60 == samples["seawall_tokens_total{gen_ai_agent_name=researcher,gen_ai_token_type=output}"]
    )
    assert pytest.approx(0.03) == samples["seawall_cost_usd_total{gen_ai_agent_name=researcher}"]
    # search: 3 researcher calls + 2 flaky calls (an error retry asks read-only tools again)
    assert 5 == samples["seawall_tool_duration_seconds_count{gen_ai_tool_name=search}"]
    assert 5 == samples["seawall_tool_duration_seconds_bucket{gen_ai_tool_name=search,le=+Inf}"]
    assert 1 == samples["seawall_tool_duration_seconds_count{gen_ai_tool_name=save}"]
    llm = "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=chat,gen_ai_tool_name=complete}"
    assert 3 == samples[llm]
    assert 0 == samples["seawall_tool_errors_total{gen_ai_tool_name=search}"]
    assert (
        1
        == samples[
            "seawall_breaker_state{seawall_breaker=tool:search,seawall_kind=tool,seawall_state=open}"
        ]
    )
    assert (
        0
        == samples[
            "seawall_breaker_state{seawall_breaker=tool:search,seawall_kind=tool,seawall_state=closed}"
        ]
    )
    assert 1 == samples["seawall_breakers_open{}"]
    assert (
        1 == samples["seawall_dlq_depth{gen_ai_agent_name=flaky,seawall_error_class=clean_abort}"]
    )
    assert (
        1
        == samples[
            "seawall_runs_total{gen_ai_agent_name=pipeline,seawall_error_class=cascade,seawall_status=failed}"
        ]
    )
    assert (
        1
        == samples[
            "seawall_handoffs_waiting{gen_ai_agent_name=writer,seawall_handoff_kind=verification_failed}"
        ]
    )


def test_histogram_buckets_are_cumulative_and_monotonic(seeded_app: tuple[Seawall, Seeded]) -> None:
    """Bucket counts never decrease with the bound, and +Inf equals the count."""
    from seawall.observe.prometheus import exposition

    app, _ = seeded_app
    samples = _samples(exposition(app.store))
    buckets = sorted(
        (float(k.split("le=")[1].rstrip("}")), v)
        for k, v in samples.items()
        if k.startswith("seawall_tool_duration_seconds_bucket{gen_ai_tool_name=search")
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)


def test_seawall_metrics_cli_prints_the_exposition(seeded_app: tuple[Seawall, Seeded]) -> None:
    """`seawall metrics --ledger URL` prints the same text."""
    from typer.testing import CliRunner

    from seawall.cli._main import cli

    app, _ = seeded_app
    result = CliRunner().invoke(cli, ["metrics", "--ledger", app.store.url])
    assert 0 == result.exit_code, result.output
    assert "# TYPE seawall_runs_total counter" in result.output
    assert "seawall_dlq_depth" in result.output


def test_seawall_dashboard_cli_prints_a_token_and_serves(
    seeded_app: tuple[Seawall, Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`seawall dashboard` binds 127.0.0.1:8765 by default and prints a generated token."""
    pytest.importorskip("uvicorn")
    import uvicorn
    from starlette.testclient import TestClient
    from typer.testing import CliRunner

    from seawall.cli._main import cli

    served: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    monkeypatch.delenv("SEAWALL_DASHBOARD_TOKEN", raising=False)
    app, _ = seeded_app
    result = CliRunner().invoke(cli, ["dashboard", "--ledger", app.store.url])
    assert 0 == result.exit_code, result.output
    assert ("127.0.0.1", 8765) == (served["host"], served["port"])
    token = result.output.split("Operator token")[1].split(":", 1)[1].split()[0]
    with TestClient(served["app"], base_url="http://127.0.0.1:8765") as client:  # type: ignore[arg-type]
        assert 303 == client.get("/", follow_redirects=False).status_code  # reading needs a login
        login = client.post(
            "/login",
            data={"token": token},
            headers={"origin": "http://127.0.0.1:8765"},
            follow_redirects=False,
        )
        assert 303 == login.status_code


def test_seawall_dashboard_cli_uses_the_token_from_the_environment(
    seeded_app: tuple[Seawall, Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SEAWALL_DASHBOARD_TOKEN set, nothing is generated or printed."""
    pytest.importorskip("uvicorn")
    import uvicorn
    from starlette.testclient import TestClient
    from typer.testing import CliRunner

    from seawall.cli._main import cli

    def serve(app: object, **kw: object) -> None:
        with TestClient(app):  # type: ignore[arg-type]
            pass  # runs the lifespan, which closes the ledger the dashboard opened

    monkeypatch.setattr(uvicorn, "run", serve)
    monkeypatch.setenv("SEAWALL_DASHBOARD_TOKEN", "from-the-environment")
    app, _ = seeded_app
    result = CliRunner().invoke(cli, ["dashboard", "--ledger", app.store.url, "--port", "9999"])
    assert 0 == result.exit_code, result.output
    assert "Operator token" not in result.output
    assert "9999" in result.output


def test_seawall_dashboard_cli_serves_other_hosts_and_named_operators(
    seeded_app: tuple[Seawall, Seeded], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--allowed-host adds a host name; --operators and --viewers read named tokens from files."""
    pytest.importorskip("uvicorn")
    import uvicorn
    from starlette.testclient import TestClient
    from typer.testing import CliRunner

    from seawall.cli._main import cli

    served: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    monkeypatch.delenv("SEAWALL_DASHBOARD_TOKEN", raising=False)
    operators = tmp_path / "operators.json"
    operators.write_text(json.dumps({"ada": "ada-token-0123456789"}))
    viewers = tmp_path / "viewers.json"
    viewers.write_text(json.dumps({"prometheus": "scrape-token-0123456789"}))
    app, _ = seeded_app
    argv = ["dashboard", "--ledger", app.store.url, "--host", "0.0.0.0"]  # noqa: S104
    argv += ["--allowed-host", "ops.example.com", "--operators", str(operators)]
    result = CliRunner().invoke(cli, [*argv, "--viewers", str(viewers)])
    assert 0 == result.exit_code, result.output
    assert "Operator token" not in result.output  # named operators: nothing generated
    web = served["app"]
    with TestClient(web, base_url="http://ops.example.com") as client:  # type: ignore[arg-type]
        scrape = {"authorization": "Bearer scrape-token-0123456789"}
        assert 200 == client.get("/metrics", headers=scrape).status_code
        login = client.post(
            "/login",
            data={"token": "ada-token-0123456789"},
            headers={"origin": "http://ops.example.com"},
            follow_redirects=False,
        )
        assert 303 == login.status_code
    with TestClient(web, base_url="http://rebound.example") as client:  # type: ignore[arg-type]
        assert 400 == client.get("/metrics", headers=scrape).status_code


def test_seawall_dashboard_cli_refuses_a_malformed_operators_file(
    seeded_app: tuple[Seawall, Seeded], tmp_path: Path
) -> None:
    """A file that is not {name: token} exits 1 naming the option and the expected shape."""
    from typer.testing import CliRunner

    from seawall.cli._main import cli

    bad = tmp_path / "operators.json"
    bad.write_text('["ada"]')
    app, _ = seeded_app
    result = CliRunner().invoke(
        cli, ["dashboard", "--ledger", app.store.url, "--operators", str(bad)]
    )
    assert 1 == result.exit_code
    assert "--operators" in result.output
    assert "names to tokens" in result.output
