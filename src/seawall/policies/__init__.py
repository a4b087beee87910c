"""Pure policy logic: decisions without I/O, reused by every driver."""

from seawall.policies.retry import Retry, RetryDecision, is_transient, retry_after_of

__all__ = ["Retry", "RetryDecision", "is_transient", "retry_after_of"]
