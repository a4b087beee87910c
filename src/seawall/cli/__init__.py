"""The ``seawall`` command line: a thin layer over the public Python API."""

from __future__ import annotations

from seawall.cli._main import cli, main

__all__ = ["cli", "main"]
