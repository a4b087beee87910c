"""Documentation cannot rot: every Python block in README and docs runs, every command is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
    """Each ```python block of the docs executes without error in a fresh folder."""
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{page}[{index}]", "exec"), {"__name__": f"docs_{index}"})  # noqa: S102


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
