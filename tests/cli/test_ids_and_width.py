"""Ids by unique prefix, tables that fit 80 columns, --version, and reads that create nothing."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from seawall import Context, Retry, Seawall, __version__
from seawall.cli import cli

runner = CliRunner()

LEDGERS = ("sqlite", "postgres")

MESSAGE = (
    "the upstream inventory service answered 503 Service Unavailable while reserving "
    "stock for order 4711; it asked to come back later"
)


def seed(ledger_url: str, runs: int = 3) -> list[str]:
    """Record ``runs`` failed runs with a long error message; return their ids."""
    app = Seawall(ledger_url)
    try:

        @app.agent(name="inventory_reservation_agent", retry=Retry(attempts=1))
        def reserve(ctx: Context, n: int) -> None:
            raise PermissionError(MESSAGE)

        return [app.run(reserve, n=n).run_id for n in range(runs)]
    finally:
        app.close()


def invoke(*args: str, width: int = 80) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), env={"COLUMNS": str(width)})
    return result.exit_code, result.output


def test_a_unique_prefix_names_a_run_everywhere(ledger_url: str) -> None:
    """show, cancel and handoffs --run accept a unique beginning of a run id."""
    run_id = seed(ledger_url, runs=1)[0]
    prefix = run_id[:14]
    code, shown = invoke("show", prefix, "--ledger", ledger_url, "--json")
    assert (0, run_id) == (code, json.loads(shown)["run"]["run_id"])
    assert 0 == invoke("cancel", prefix, "--ledger", ledger_url)[0]
    code, listed = invoke("handoffs", "list", "--run", prefix, "--ledger", ledger_url, "--json")
    assert (0, []) == (code, json.loads(listed))


def test_an_ambiguous_prefix_lists_the_candidates(ledger_url: str) -> None:
    """A prefix several runs share exits 1 and lists each candidate's full id."""
    ids = seed(ledger_url, runs=2)
    common = next(i for i in range(32) if ids[0][i] != ids[1][i])
    code, output = invoke("show", ids[0][:common], "--ledger", ledger_url, width=200)
    assert 1 == code
    assert "ambiguous_id" in output
    assert all(run_id in output for run_id in ids)


def test_an_unknown_prefix_says_where_it_looked(ledger_url: str) -> None:
    """No run with that beginning: exit 1, naming the prefix."""
    seed(ledger_url, runs=1)
    code, output = invoke("show", "zzzz", "--ledger", ledger_url, width=200)
    assert (1, True) == (code, "no run id starts with 'zzzz'" in output)


def test_tables_fit_80_columns_without_cutting_words(ledger_url: str) -> None:
    """runs, show and dlq list at 80 columns: no line is wider and every word stays whole."""
    run_id = seed(ledger_url, runs=2)[0]
    message = {"Unavailable", "reserving", "inventory_reservation_agent"}
    for args, expected in (
        (["runs"], {"inventory_reservation_agent", "clean_abort"}),
        (["show", run_id], message),
        (["dlq", "list"], message),
    ):
        code, output = invoke(*args, "--ledger", ledger_url)
        assert 0 == code, output
        assert [] == [line for line in output.splitlines() if cell_len(line) > 80]
        assert expected <= set(re.findall(r"[\w']+", output)), output


def test_ids_shown_in_tables_are_accepted_by_show(ledger_url: str) -> None:
    """Each id a table shows is whole (no ellipsis) and names exactly its run."""
    ids = set(seed(ledger_url, runs=3))
    code, output = invoke("runs", "--ledger", ledger_url)
    assert 0 == code
    shown = re.findall(r"^([0-9a-f]{16,32})\s", output, re.MULTILINE)
    assert 3 == len(shown)
    for short in shown:
        code, detail = invoke("show", short, "--ledger", ledger_url, "--json")
        assert 0 == code, detail
        assert json.loads(detail)["run"]["run_id"] in ids


def test_version() -> None:
    """seawall --version prints the package version."""
    assert (0, f"seawall {__version__}\n") == invoke("--version")


@pytest.mark.parametrize(
    "args",
    [
        ["runs"],
        ["show", "abc"],
        ["dlq", "list"],
        ["handoffs", "list"],
        ["breakers", "list"],
        ["drift"],
        ["gc"],
        ["cancel", "abc"],
        ["metrics"],
    ],
)
def test_reading_commands_never_create_a_ledger(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a folder with no ledger, a reading command exits 1, says where it looked, adds nothing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEAWALL_LEDGER", raising=False)
    code, output = invoke(*args, width=300)
    assert 1 == code
    assert f"no ledger at {tmp_path / '.seawall' / 'ledger.db'}" in output
    assert "the default" in output
    assert [] == list(tmp_path.iterdir())


def test_a_missing_postgres_schema_is_not_created(postgres_url: str) -> None:
    """A PostgreSQL URL naming a schema with no ledger is reported, and no schema appears."""
    import psycopg

    schema = f"sw_absent_{uuid.uuid4().hex[:8]}"
    code, output = invoke("runs", "--ledger", f"{postgres_url}?schema={schema}", width=300)
    assert 1 == code
    assert f"no ledger at {postgres_url}?schema={schema} (from --ledger;" in output
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
    assert (0,) == row
