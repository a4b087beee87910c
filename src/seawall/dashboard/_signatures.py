"""Errors grouped by signature: the same failure with different ids, numbers or values is one group.

Pure functions over the ledger's error counts (:meth:`~seawall.ledger.Store.error_counts`): a
message's signature is its text with the parts that vary from run to run (UUIDs, hex ids,
IP addresses, numbers, quoted values) replaced by placeholders, after its error type.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from seawall.dashboard._views import CONTAINED

if TYPE_CHECKING:
    from collections.abc import Sequence

    from seawall.ledger import ErrorCount

_VARYING: Final = re.compile(
    r"""(?P<uuid>\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b)
      | (?P<hex>\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b)
      | (?P<ip>\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b)
      | (?P<quoted>'[^']{0,200}'|"[^"]{0,200}")
      | (?P<number>(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]))""",
    re.VERBOSE | re.IGNORECASE,
)
_PLACEHOLDER: Final = {
    "uuid": "<id>",
    "hex": "<id>",
    "ip": "<ip>",
    "quoted": "'…'",
    "number": "<n>",
}
SIGNATURE_CHARS: Final = 240


def signature(error_type: str | None, message: str) -> str:
    """The signature of an error: its type and its message with varying parts replaced."""
    text = _VARYING.sub(lambda m: _PLACEHOLDER[m.lastgroup or "number"], message)
    text = " ".join(text.split())[:SIGNATURE_CHARS]
    return f"{error_type}: {text}" if error_type else text


def search_fragment(message: str) -> str:
    """The longest part of a message that does not vary: what the runs list searches for."""
    parts = [" ".join(p.split()) for p in _VARYING.split(message) if p and not _VARYING.match(p)]
    longest = max(parts, key=len, default="")
    return longest.strip(" :,.;-")[:100]


@dataclass
class ErrorGroup:
    """Runs whose errors share one signature.

    Attributes:
        signature: Their signature.
        error_type: The error type.
        error_class: Their error class (the most common one).
        sample: One of their messages, in full.
        fragment: Text every one of their messages contains (for a runs-list search).
        runs: How many runs.
        agents: Runs per agent.
        trend: Runs per time bucket.
        classes: Runs per error class.
    """

    signature: str
    error_type: str | None
    error_class: str | None
    sample: str
    fragment: str
    runs: int = 0
    agents: Counter[str] = field(default_factory=Counter)
    trend: list[int] = field(default_factory=list)
    classes: Counter[str] = field(default_factory=Counter)

    @property
    def contained(self) -> bool:
        """Whether these are contained failures (``cascade``), not root ones."""
        return self.error_class == CONTAINED

    @property
    def last_bucket(self) -> int:
        """The newest bucket with a run (-1: none)."""
        return max((i for i, n in enumerate(self.trend) if n), default=-1)


def group_errors(counts: Sequence[ErrorCount], buckets: int) -> list[ErrorGroup]:
    """Fold error counts into groups by signature: root failures first, then by run count."""
    groups: dict[str, ErrorGroup] = {}
    for count in counts:
        key = signature(count.error_type, count.error_message)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ErrorGroup(
                signature=key,
                error_type=count.error_type,
                error_class=count.error_class,
                sample=count.error_message,
                fragment=search_fragment(count.error_message),
                trend=[0] * buckets,
            )
        group.runs += count.runs
        group.agents[count.agent] += count.runs
        group.classes[count.error_class or ""] += count.runs
        group.trend[min(max(count.bucket, 0), buckets - 1)] += count.runs
    for group in groups.values():
        group.error_class = group.classes.most_common(1)[0][0] or None
    return sorted(groups.values(), key=lambda g: (g.contained, -g.runs, g.signature))
