"""The Seawall dashboard: a local web app over the ledger (``seawall dashboard``).

Needs the ``dashboard`` extra: ``pip install 'seawall[dashboard]'``.
"""

from __future__ import annotations

from seawall.dashboard._app import create_app

__all__ = ["create_app"]
