"""The Seawall dashboard: a local web app over the ledger (``seawall dashboard``).

Needs the ``dashboard`` extra: ``pip install 'seawall[dashboard]'``.
"""

from __future__ import annotations

from seawall.dashboard._app import create_app
from seawall.dashboard._security import LOOPBACK, TOKEN_ENV, new_token

__all__ = ["LOOPBACK", "TOKEN_ENV", "create_app", "new_token"]
