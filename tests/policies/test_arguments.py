"""The argument checks shared by policies, watches, alert rules and fault plans."""

from __future__ import annotations

import math

import pytest

from seawall.policies._arguments import is_amount, is_count


@pytest.mark.parametrize(("value", "least"), [(0, 0), (1, 1), (10**9, 1)])
def test_is_count_accepts_whole_numbers_from_the_least(value: int, least: int) -> None:
    """Integers at or above ``least`` are counts."""
    assert is_count(value, least) is True


@pytest.mark.parametrize(("value", "least"), [(True, 0), (False, 0), (1.0, 0), ("1", 0), (0, 1)])
def test_is_count_refuses_bools_floats_strings_and_small_numbers(value: object, least: int) -> None:
    """A bool is not a count, nor a float that happens to be whole, nor one below ``least``."""
    assert is_count(value, least) is False


@pytest.mark.parametrize(("value", "least"), [(0, 0), (0.5, 0), (1, 1), (2.5, 1)])
def test_is_amount_accepts_finite_numbers_from_the_least(value: float, least: float) -> None:
    """Finite ints and floats at or above ``least`` are amounts."""
    assert is_amount(value, least) is True


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, -0.1, "1", None])
def test_is_amount_refuses_infinities_nan_negatives_and_non_numbers(value: object) -> None:
    """Infinity, NaN, a negative number and anything not a number are refused."""
    assert is_amount(value) is False
