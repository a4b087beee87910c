"""Optional dependencies: import one where an option needs it, or say which extra installs it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from seawall.errors import MissingExtraError

if TYPE_CHECKING:
    from types import ModuleType


def optional_module(name: str, *, extra: str, needed_by: str, otherwise: str = "") -> ModuleType:
    """Import the optional module ``name`` (``"scipy.stats"``) and return it.

    Args:
        name: The module's dotted name.
        extra: The Seawall extra that installs it (``drift``, ``semantic``...).
        needed_by: What needs it, for the message (``"OpenAIEmbedder needs the openai client"``).
        otherwise: A way to do without it, for the message (empty: none).

    Raises:
        MissingExtraError: ``name`` cannot be imported; the message names the ``pip install``.
    """
    try:
        __import__(name)  # through the import statement's hook, as a plain import would
    except ImportError as exc:
        alternative = f" ({otherwise})" if otherwise else ""
        raise MissingExtraError(
            f"{needed_by}: pip install 'seawall[{extra}]'{alternative}", extra=extra
        ) from exc
    return sys.modules[name]
