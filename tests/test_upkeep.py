"""When the sweeper folds the ledger's counters, and which hours (the policy; the folding itself
is tested on both ledgers in tests/ledger/test_run_counts.py, the sweeper's call in
tests/test_takeover.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

import pytest

from seawall.errors import LedgerUnavailableError
from seawall.runtime.upkeep import FOLD_EVERY, WHOLE_EVERY, Upkeep

if TYPE_CHECKING:
    from seawall.ledger import Store


class Folds:
    """A store's ``compact_counts`` that records its calls (and fails when told to)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []
        self.down = False

    def compact_counts(self, before: float, since: float = 0.0) -> int:
        if self.down:
            raise LedgerUnavailableError("the ledger is down")
        self.calls.append((before, since))
        return 7


def test_folds_every_hour_first_and_daily_else_the_hours_since_the_last() -> None:
    folds = Folds()
    store = cast("Store", folds)
    upkeep = Upkeep()
    t = 1_000_000.0
    assert 7 == upkeep.fold(store, t)
    assert 0 == upkeep.fold(store, t + FOLD_EVERY - 1)  # not due
    assert 7 == upkeep.fold(store, t + FOLD_EVERY)
    assert 7 == upkeep.fold(store, t + WHOLE_EVERY)
    assert [
        (t, 0.0),
        (t + FOLD_EVERY, t - 7200),
        (t + WHOLE_EVERY, 0.0),
    ] == folds.calls


def test_a_failed_fold_is_logged_and_tried_again_when_next_due(
    caplog: pytest.LogCaptureFixture,
) -> None:
    folds = Folds()
    store = cast("Store", folds)
    upkeep = Upkeep()
    folds.down = True
    with caplog.at_level(logging.WARNING, logger="seawall.upkeep"):
        assert 0 == upkeep.fold(store, 100.0)
    assert ["folding the ledger's counters failed; trying again in 600 s"] == [
        r.getMessage() for r in caplog.records
    ]
    folds.down = False
    assert 0 == upkeep.fold(store, 100.0 + FOLD_EVERY / 2)
    assert 7 == upkeep.fold(store, 100.0 + FOLD_EVERY)
    assert [(100.0 + FOLD_EVERY, 0.0)] == folds.calls  # still every hour: none was folded yet
