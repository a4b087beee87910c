"""Optional dependencies: imported where an option needs one, else the extra to install."""

from __future__ import annotations

import json

import pytest

from seawall import ConfigurationError, MissingExtraError
from seawall._extras import optional_module


def test_an_installed_module_is_returned() -> None:
    """A module that imports is returned as the import statement would give it."""
    assert json is optional_module("json", extra="none", needed_by="a test")


def test_a_missing_module_names_the_pip_install() -> None:
    """A missing module is a MissingExtraError saying which extra installs it, and why."""
    with pytest.raises(MissingExtraError) as caught:
        optional_module(
            "seawall_no_such_module", extra="drift", needed_by="X needs Y", otherwise="or use Z"
        )
    assert "X needs Y: pip install 'seawall[drift]' (or use Z)" == caught.value.message
    assert "drift" == caught.value.fields["extra"]
    assert isinstance(caught.value, ConfigurationError)
    assert isinstance(caught.value, ImportError)
