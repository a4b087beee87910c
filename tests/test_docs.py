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
