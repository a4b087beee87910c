"""Pure policy logic: decisions without I/O, reused by every driver."""

from seawall.policies.breaker import Breaker
from seawall.policies.budget import RetryBudget
from seawall.policies.drift import OnDrift
from seawall.policies.guards import NO_GUARDS, Guards
from seawall.policies.retry import Retry, RetryDecision, is_transient, retry_after_of

__all__ = [
    "NO_GUARDS",
    "Breaker",
    "Guards",
    "OnDrift",
    "Retry",
    "RetryBudget",
    "RetryDecision",
    "is_transient",
    "retry_after_of",
]
