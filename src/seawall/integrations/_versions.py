"""The supported version range of each integration's framework, checked at import time."""

from __future__ import annotations

import importlib.metadata

from seawall.errors import IntegrationError


def installed_version(distribution: str) -> str | None:
    """Return the installed version of ``distribution``, or ``None`` when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def require(distribution: str, supported: str, *, extra: str, module: str) -> None:
    """Refuse to load ``module`` unless ``distribution`` is installed in the ``supported`` range.

    Args:
        distribution: The framework's name on PyPI (``openai``, ``pydantic-ai-slim``...).
        supported: A PEP 440 specifier set, e.g. ``">=1.66,<4"``.
        extra: The Seawall extra that installs a supported version.
        module: The integration module asking, for the message.

    Raises:
        IntegrationError: The framework is missing or its version is outside the range.
    """
    fix = f"pip install 'seawall[{extra}]'"
    found = installed_version(distribution)
    if found is None:
        raise IntegrationError(
            f"{module} needs {distribution}{supported}, which is not installed; {fix}",
            distribution=distribution,
            supported=supported,
        )
    from packaging.specifiers import SpecifierSet  # noqa: PLC0415 - installed by every extra
    from packaging.version import InvalidVersion, Version  # noqa: PLC0415

    try:
        ok = Version(found) in SpecifierSet(supported)
    except InvalidVersion:
        ok = False
    if not ok:
        raise IntegrationError(
            f"{module} supports {distribution}{supported}, but {distribution} {found} is "
            f"installed; install a supported version ({fix}) or pin {distribution}{supported}",
            distribution=distribution,
            supported=supported,
            installed=found,
        )
