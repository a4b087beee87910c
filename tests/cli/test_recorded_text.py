"""Text read from the ledger reaches the terminal exactly as recorded, never parsed as markup."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from seawall import Context, HandOffRecord, OnDrift, Retry, Seawall, verify
from seawall.cli import cli
from seawall.ledger import AlertRecord

runner = CliRunner()

MARKUP_LIKE = [
    "[/]",
    "[bold]loud[/bold]",
    "pip install 'seawall[metrics]'",
    "[red",
    "x[/y]z",
    ":fire: :thumbs_up:",
    "\\[escaped]",
    "[link=https://example.com]click[/link]",
    "a\\",
]
recorded_text = st.one_of(
    st.sampled_from(MARKUP_LIKE),
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn")),
        min_size=1,
        max_size=40,
    ).filter(str.strip),
)


@contextlib.contextmanager
def recorded(folder: Path, name: str, words: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A ledger where ``name`` is an agent and ``words`` an error, a reason, a message...

    Yields the ledger URL and the recorded strings; while it is open, the app that recorded
    them is importable as ``recorded_app:app`` (for ``seawall replay``).
    """
    url = f"sqlite:///{folder / 'ledger.db'}"
    app = Seawall(url)
    module = types.ModuleType("recorded_app")
    module.app = app  # type: ignore[attr-defined]
    sys.modules["recorded_app"] = module
    try:

        @app.tool
        def lookup() -> str:
            raise PermissionError(words)

        @app.agent(name=name, retry=Retry(attempts=1))
        def failing(ctx: Context) -> None:
            ctx.call(lookup)

        @app.agent(
            name="judged",
            verify=[verify.rule(lambda out: False, words)],
            on_drift=OnDrift(retries=0, then="handoff"),
        )
        def judged(ctx: Context) -> int:
            return 1

        failed = app.run(failing)
        app.run(judged)
        app.breakers.open(f"agent:{name}", reason=words)
        app.store.open_handoff(
            HandOffRecord(
                handoff_id=uuid.uuid4().hex,
                run_id=failed.run_id,
                kind="low_confidence",
                reason=words,
                subject={"why": words},
                status="open",
                created_at=time.time(),
            ),
            epoch=app.ledger.run(failed.run_id).epoch,
        )
        app.store.record_alert(
            AlertRecord(
                alert_id=uuid.uuid4().hex,
                kind="breaker_open",
                agent=name,
                feature=f"agent:{name}",
                statistic=3.0,
                threshold=3.0,
                window="",
                message=words,
                at=time.time(),
                details={},
            )
        )
        stored = app.ledger.run(failed.run_id)
        error = f"{stored.error_type}: {stored.error_message}"
        yield url, {"run": failed.run_id, "error": error, "name": name}
    finally:
        sys.modules.pop("recorded_app", None)
        app.close()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=recorded_text, words=recorded_text)
def test_every_command_prints_recorded_text_verbatim(
    name: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """runs, show, dlq list, handoffs list/show, breakers list and drift print it as recorded."""
    monkeypatch.setenv("COLUMNS", "4000")  # no wrapping: the text must appear in one piece
    with tempfile.TemporaryDirectory() as folder, recorded(Path(folder), name, words) as found:
        url, facts = found
        commands = {
            "runs": (["runs"], [name]),
            "show": (["show", facts["run"]], [name, facts["error"]]),
            "dlq": (["dlq", "list"], [name, facts["error"].split(": ", 1)[1]]),
            "handoffs": (["handoffs", "list", "--status", ""], [words]),
            "breakers": (["breakers", "list"], [f"agent:{name}", words]),
            "drift": (["drift"], [name, words]),
        }
        handoff = runner.invoke(cli, ["handoffs", "list", "--ledger", url, "--json"])
        first = handoff.output.split('"handoff_id": "', 1)[1][:32]
        commands["handoff"] = (["handoffs", "show", first], [words])
        judged = runner.invoke(cli, ["runs", "--agent", "judged", "--ledger", url, "--json"])
        judged_id = judged.output.split('"run_id": "', 1)[1][:32]
        commands["verdicts"] = (["show", judged_id], [words])
        for label, (args, expected) in commands.items():
            result = runner.invoke(cli, [*args, "--ledger", url])
            assert 0 == result.exit_code, (label, result.output)
            for text in expected:
                assert text in result.output, (label, text, result.output)
        replayed = runner.invoke(
            cli, ["replay", facts["run"], "--app", "recorded_app:app", "--live", "--ledger", url]
        )
        assert 1 == replayed.exit_code, replayed.output  # it fails again, as recorded
        assert facts["error"].split(": ", 1)[1] in replayed.output, replayed.output


@pytest.mark.parametrize("words", MARKUP_LIKE)
def test_errors_printed_on_stderr_keep_their_brackets(words: str, tmp_path: Path) -> None:
    """An error message holding brackets (a missing extra's hint) is printed as it is."""
    with recorded(tmp_path, "agent", "boom") as (url, _):
        result = runner.invoke(cli, ["show", words, "--ledger", url])
    assert 1 == result.exit_code
    assert repr(words) in result.output.replace("\n", "")
