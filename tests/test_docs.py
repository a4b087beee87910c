"""Documentation cannot rot: every Python block in README and docs runs, every command is documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seawall.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        for index, match in enumerate(BLOCK.finditer(page.read_text(encoding="utf-8"))):
            found.append((page.name, index, match.group(1)))
    return found


@pytest.mark.parametrize(("page", "index", "code"), blocks(), ids=lambda v: str(v)[:30])
def test_python_block_runs(
    page: str, index: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ```python block of the docs executes as a script without error in a fresh folder."""
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{page}[{index}]", "exec"), {"__name__": "__main__"})  # noqa: S102


def test_docs_have_python_blocks() -> None:
    """The collector finds the README quickstart (guards against a broken pattern)."""
    assert any(page == "README.md" for page, _, _ in blocks())


def test_readme_opens_with_the_two_setup_commands() -> None:
    """README's first code block is exactly `make demo` then `make test`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert first is not None
    commands = [line.split("#")[0].strip() for line in first.group(1).splitlines() if line.strip()]
    assert ["make demo", "make test"] == commands


def test_every_cli_command_is_documented() -> None:
    """docs/cli.md has a section for every command the CLI registers."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for command in cli.registered_commands:
        assert f"## `seawall {command.name}" in text, command.name
    for group in cli.registered_groups:
        assert f"## `seawall {group.name}" in text, group.name


def test_cli_reference_is_generated_from_the_cli() -> None:
    """docs/cli-reference.md is what `python -m seawall.cli._reference` prints today."""
    from seawall.cli._reference import render

    assert render() == (ROOT / "docs" / "cli-reference.md").read_text(encoding="utf-8")


def test_toml_blocks_are_valid_fault_plans() -> None:
    """Every ```toml block in the docs parses and is a valid chaos fault plan."""
    import tomllib

    from seawall.chaos import FaultPlan

    for page in PAGES:
        for block in re.findall(r"```toml\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL):
            assert FaultPlan.from_dict(tomllib.loads(block)).faults, page.name


def test_shell_blocks_name_real_commands() -> None:
    """Every `seawall ...` line of a ```sh block in the docs names a command the CLI has."""
    import typer

    root = typer.main.get_command(cli)
    for page in PAGES:
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL):
            for line in block.splitlines():
                words = line.split("#")[0].split()
                if not words or words[0] != "seawall":
                    continue
                command = root
                for word in words[1:]:
                    if word.startswith("-") or not hasattr(command, "commands"):
                        break
                    assert word in command.commands, f"{page.name}: {line}"
                    command = command.commands[word]


def _cells(line: str) -> int:
    """How many cells a Markdown table row holds (cells split at unescaped pipes)."""
    return len(re.split(r"(?<!\\)\|", line.strip().removeprefix("|").removesuffix("|")))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_markdown_tables_render_every_row(page: Path) -> None:
    """Each `|` line renders as a row of a table, with as many cells as the table's header."""
    from markdown_it import MarkdownIt

    source = page.read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    tables = [token.map for token in tokens if token.type == "table_open" and token.map]
    fenced = False
    for number, line in enumerate(source.splitlines()):
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("|"):
            continue
        table = next((span for span in tables if span[0] <= number < span[1]), None)
        assert table is not None, f"{page.name}:{number + 1} is not in a table: {line[:60]}"
        header = source.splitlines()[table[0]]
        assert _cells(header) == _cells(line), f"{page.name}:{number + 1}: {line[:60]}"


def test_quickstart_runs_as_a_script_and_imports_as_a_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's Quickstart as quick.py: `python quick.py` runs it; `--app quick:app` only imports."""
    code = next(code for page, _, code in blocks() if page == "README.md")
    (tmp_path / "quick.py").write_text(code, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    done = subprocess.run(
        [sys.executable, "quick.py"], capture_output=True, text=True, check=True, timeout=60
    )
    run_id = done.stdout.split()[-1]
    runner = CliRunner()
    try:
        for args in (
            ["resume", "--app", "quick:app"],
            ["replay", run_id[:16], "--app", "quick:app", "--recorded"],
            ["show", run_id[:16]],
        ):
            result = runner.invoke(cli, args)
            assert 0 == result.exit_code, (args, result.output)
        listed = runner.invoke(cli, ["runs", "--json", "--agent", "assistant"])
        assert 1 == len([r for r in json.loads(listed.output) if r["replay_of"] is None])
    finally:
        module = sys.modules.pop("quick", None)
        if module is not None:
            module.app.close()
