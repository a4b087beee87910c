"""Chaos testing: prove that your own workflow recovers from each failure class.

Write a fault plan (in Python with :class:`FaultPlan`/:class:`Fault`, or as TOML), then run your
agent or graph under it with ``seawall chaos run module:target --plan plan.toml --runs N``: the
workload runs in child processes that are restarted after injected crashes, and the report says,
for each injected fault, how it was recovered and whether the invariants still hold.
"""

from __future__ import annotations

from seawall.chaos._harness import ChaosReport, check, run_session
from seawall.chaos._inject import InjectedFault, InjectedPermanentFault, Injector, install
from seawall.chaos._plan import KINDS, Fault, FaultPlan

__all__ = [
    "KINDS",
    "ChaosReport",
    "Fault",
    "FaultPlan",
    "InjectedFault",
    "InjectedPermanentFault",
    "Injector",
    "check",
    "install",
    "run_session",
]
