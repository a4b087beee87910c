"""The command line: every command documented, JSON output stable, errors clear."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seawall import Retry, Seawall
from seawall.cli import cli

runner = CliRunner()


def seed(ledger_url: str) -> tuple[str, str]:
    """Record one succeeded and one failed run; return their ids."""
    app = Seawall(ledger_url)

    @app.tool(mutating=True)
    def write(x: int) -> int:
        return x

    @app.agent(name="ok")
    def ok(ctx, x: int) -> int:
        ctx.call(write, x)
        ctx.record_usage(model="m", input_tokens=3, output_tokens=4, cost_usd=0.001)
        return x

    @app.agent(name="bad", retry=Retry(attempts=1))
    def bad(ctx) -> None:
        raise ValueError("the input was wrong")

    try:
        return app.run(ok, x=7).run_id, app.run(bad).run_id
    finally:
        app.close()


def test_every_command_has_help() -> None:
    """Each command prints help with a description."""
    names = [c.name for c in cli.registered_commands]
    assert {"runs", "show", "resume", "demo", "gc", "cancel"} <= set(names)
    for group in cli.registered_groups:
        result = runner.invoke(cli, [group.name, "--help"])
        assert 0 == result.exit_code, result.output
        for sub in group.typer_instance.registered_commands:
            result = runner.invoke(cli, [group.name, sub.name, "--help"])
            assert 0 == result.exit_code, result.output
            assert sub.callback.__doc__
    for name in names:
        result = runner.invoke(cli, [name, "--help"])
        assert 0 == result.exit_code, result.output
        assert "Usage" in result.output
        command = next(c for c in cli.registered_commands if c.name == name)
        assert command.callback is not None
        assert command.callback.__doc__


def test_runs_json_lists_runs_with_minimum_fields(ledger_url: str) -> None:
    """`seawall runs --json` prints every minimum field of each run."""
    ok_id, bad_id = seed(ledger_url)
    result = runner.invoke(cli, ["runs", "--ledger", ledger_url, "--json"])
    assert 0 == result.exit_code, result.output
    rows = json.loads(result.output)
    assert {ok_id, bad_id} == {r["run_id"] for r in rows}
    for field in (
        "run_id",
        "start_time",
        "end_time",
        "status",
        "input_hash",
        "output_hash",
        "tokens_used",
        "cost_usd",
        "error_class",
    ):
        assert all(field in r for r in rows)
    bad = next(r for r in rows if r["run_id"] == bad_id)
    assert "clean_abort" == bad["error_class"]
    assert "the input was wrong" == bad["error_message"]


def test_runs_filters(ledger_url: str) -> None:
    """`--status`, `--agent`, `--error-class`, `--since` and `--limit` filter the list."""
    ok_id, bad_id = seed(ledger_url)

    def ids(*args: str) -> list[str]:
        out = runner.invoke(cli, ["runs", "--ledger", ledger_url, "--json", *args])
        assert 0 == out.exit_code, out.output
        return [r["run_id"] for r in json.loads(out.output)]

    assert [bad_id] == ids("--status", "failed")
    assert [ok_id] == ids("--agent", "ok")
    assert [bad_id] == ids("--error-class", "clean_abort")
    assert 2 == len(ids("--since", "1h"))
    assert [] == ids("--since", "2999-01-01")
    assert 1 == len(ids("--limit", "1"))


def test_runs_table_for_people(ledger_url: str) -> None:
    """Without --json, runs prints a table."""
    seed(ledger_url)
    result = runner.invoke(cli, ["runs", "--ledger", ledger_url])
    assert 0 == result.exit_code
    assert "2 run(s)" in result.output


def test_runs_reads_ledger_from_environment(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$SEAWALL_LEDGER is the default ledger."""
    seed(ledger_url)
    monkeypatch.setenv("SEAWALL_LEDGER", ledger_url)
    result = runner.invoke(cli, ["runs", "--json"])
    assert 2 == len(json.loads(result.output))


def test_bad_status_filter_is_a_clear_error(ledger_url: str) -> None:
    """An unknown status exits 1 with the valid choices."""
    seed(ledger_url)
    result = runner.invoke(cli, ["runs", "--ledger", ledger_url, "--status", "exploded"])
    assert 1 == result.exit_code
    assert "succeeded" in result.output


def test_bad_since_is_a_usage_error(ledger_url: str) -> None:
    """An unparseable --since is rejected with the accepted forms."""
    result = runner.invoke(cli, ["runs", "--ledger", ledger_url, "--since", "yesterday-ish"])
    assert 2 == result.exit_code


def test_show_json_has_run_attempts_and_steps(ledger_url: str) -> None:
    """`seawall show --json` returns the run, its attempts and decoded steps."""
    ok_id, _ = seed(ledger_url)
    result = runner.invoke(cli, ["show", ok_id, "--ledger", ledger_url, "--json"])
    assert 0 == result.exit_code, result.output
    record = json.loads(result.output)
    assert ok_id == record["run"]["run_id"]
    assert {"x": 7} == record["inputs"]
    assert 7 == record["output"]
    assert ["succeeded"] == [a["status"] for a in record["attempts"]]
    assert ["write", "usage"] == [s["name"] for s in record["steps"]]
    assert ["write", [7], {}] == record["steps"][0]["request"]
    assert 7 == record["steps"][0]["response"]
    assert record["steps"][0]["mutating"] is True
    assert 7 == record["run"]["tokens_used"]


def test_show_for_people(ledger_url: str) -> None:
    """Without --json, show prints the fields, attempts and steps."""
    _, bad_id = seed(ledger_url)
    result = runner.invoke(cli, ["show", bad_id, "--ledger", ledger_url])
    assert 0 == result.exit_code
    assert "clean_abort" in result.output
    assert "Attempts" in result.output


def test_show_unknown_run_exits_1_with_message(ledger_url: str) -> None:
    """An unknown run id exits 1 and names the id."""
    seed(ledger_url)
    result = runner.invoke(cli, ["show", "does-not-exist", "--ledger", ledger_url])
    assert 1 == result.exit_code
    assert "does-not-exist" in result.output


def test_unknown_ledger_scheme_exits_with_message(tmp_path: Path) -> None:
    """A ledger URL with an unknown scheme is reported, not a traceback."""
    result = runner.invoke(cli, ["runs", "--ledger", "mysql://db/x"])
    assert 1 == result.exit_code
    assert "unknown scheme" in result.output


def test_resume_loads_app_and_reports_nothing_to_do(
    tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`seawall resume --app module:attr` imports the user's app."""
    module = tmp_path / "userapp.py"
    module.write_text(
        textwrap.dedent(
            f"""
            from seawall import Seawall
            app = Seawall({ledger_url!r})

            @app.agent
            def agent(ctx):
                return 1
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    result = runner.invoke(cli, ["resume", "--app", "userapp:app", "--json"])
    assert 0 == result.exit_code, result.output
    assert [] == json.loads(result.output)
    sys.modules.pop("userapp").app.close()


def test_resume_refuses_a_different_ledger(
    tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--ledger that is not the app's ledger is refused before anything runs."""
    module = tmp_path / "otherapp.py"
    module.write_text(f"from seawall import Seawall\napp = Seawall({ledger_url!r})\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = runner.invoke(cli, ["resume", "--app", "otherapp:app", "--ledger", other])
    assert 2 == result.exit_code
    sys.modules.pop("otherapp").app.close()


@pytest.mark.parametrize("spec", ["nomodule", "no_such_module_xyz:app", "json:dumps"])
def test_resume_with_bad_app_spec_is_a_usage_error(spec: str) -> None:
    """A malformed or wrong --app is rejected with a message."""
    result = runner.invoke(cli, ["resume", "--app", spec])
    assert 2 == result.exit_code
