"""The CLI reference, generated from the CLI itself (``python -m seawall.cli._reference``)."""

from __future__ import annotations

import sys
from typing import Any

import typer

from seawall.cli._main import cli


def _params(command: Any) -> list[str]:
    lines = []
    for param in command.params:
        if param.name == "help":
            continue
        if param.param_type_name == "argument":
            lines.append(f"- `{(param.name or '').upper()}` (argument)")
            continue
        names = " / ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
        help_text = (getattr(param, "help", None) or "").strip()
        default = param.default
        flag = getattr(param, "is_flag", False)
        shown = "" if default in (None, False, "", ()) or flag else f" (default: `{default}`)"
        lines.append(f"- {names}: {help_text}{shown}")
    return lines


def _walk(command: Any, path: list[str], out: list[str]) -> None:
    # Typer ships its own copy of click, so commands are recognised by shape, not by class.
    if hasattr(command, "commands"):
        for name in sorted(command.commands):
            _walk(command.commands[name], [*path, name], out)
        return
    out.append(f"## `{' '.join(path)}`")
    out.append("")
    out.append((command.help or "").strip().split("\n\n")[0])
    out.append("")
    out.extend(_params(command))
    out.append("")


def render() -> str:
    """The reference, as Markdown."""
    out = [
        "# CLI reference",
        "",
        "Generated from the CLI itself by `python -m seawall.cli._reference` (a test fails when",
        "this file is out of date). The guide is [cli.md](cli.md).",
        "",
    ]
    _walk(typer.main.get_command(cli), ["seawall"], out)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
