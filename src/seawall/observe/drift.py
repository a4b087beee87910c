"""Drift detection across runs: what is watched, the statistics, and when a shift is an alert.

Pure functions and value objects, no I/O; the runtime feeds them samples from the ledger
(:mod:`seawall.observe.monitor`).

For each watched feature, the *current* window (the newest ``window`` runs) is compared with
the *reference* window (the first ``reference`` runs, or a pinned period):

- the **population stability index** (PSI) measures how far the distributions moved (an effect
  size: 0.1 is a moderate shift, 0.25 a large one). Categories are compared as they are; numbers
  are cut into ten bins at the reference's deciles. PSI needs no library.
- with ``method="test"`` (the default) a two-sample test says whether that move can be sampling
  noise: chi-square on the contingency table of categories (``scipy.stats.chi2_contingency``),
  Kolmogorov-Smirnov for numbers (``scipy.stats.ks_2samp``). A shift needs both: p below
  ``alpha`` *and* PSI at or above ``psi``. The test guards small windows (where PSI is noisy),
  the PSI floor guards large ones (where any trivial difference is "significant").
- with ``method="psi"`` only the PSI threshold decides, with no dependency; PSI's sampling noise
  grows as windows shrink (roughly ``bins * (1/reference + 1/window)``), so it needs windows of
  several hundred runs for numeric features.

A shift becomes an alert only after ``confirm`` consecutive evaluations found it, once: the
feature then stays *shifted* (no further alert) until ``confirm`` evaluations find its PSI below
half the threshold, and a new alert for it waits ``cooldown`` seconds after the last.

``semantic=`` adds the meaning of the outputs, compared through embeddings
(:mod:`seawall.observe.semantic`); it alerts as the feature ``semantic``, with the same
confirmation, recovery and cooldown.
"""

from __future__ import annotations

import bisect
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Final, Literal

from seawall._extras import optional_module
from seawall.errors import ConfigurationError
from seawall.observe.semantic import SemanticWatch, field_of
from seawall.policies._arguments import is_amount, is_count

if TYPE_CHECKING:
    from seawall.ledger import DriftSample

Method = Literal["test", "psi"]

NUMERIC_FEATURES: Final = ("output_bytes", "tokens", "cost_usd", "latency", "confidence")
"""Numeric features of a run: output size (bytes), tokens, cost, latency (s), confidence."""
CATEGORICAL_FEATURES: Final = ("decision", "verified")
"""Categorical features: the decision field of the output, and whether verification passed."""
FEATURES: Final = ("decision", *NUMERIC_FEATURES, "verified")
DEFAULT_FEATURES: Final = (*NUMERIC_FEATURES, "verified")
"""Watched by default (the decision too, when a ``decision`` field is named)."""

BINS: Final = 10
SMOOTHING: Final = 0.5
"""Pseudo-count added to every bin, so an empty bin does not make the PSI infinite."""
MAX_CATEGORIES: Final = 20
OTHER: Final = "(other)"


@dataclass(frozen=True, slots=True)
class DriftWatch:
    """What to watch of an agent's runs, and how sure to be before alerting.

    Args:
        decision: The output field holding the agent's categorical decision (``"action"``; a
            dotted path such as ``"review.verdict"`` reads nested objects).
        features: Other features to watch, among ``output_bytes``, ``tokens``, ``cost_usd``,
            ``latency``, ``confidence`` and ``verified`` (default: all of them).
        reference: The reference window: the first N runs of the agent (an integer), or a
            pinned period ``(start, end)`` of Unix times.
        window: The current window: the newest N runs.
        every: Evaluate after every N finished runs (of this process).
        method: ``"test"`` (chi-square / Kolmogorov-Smirnov p-value and PSI; needs
            ``seawall[drift]``) or ``"psi"`` (PSI alone; no dependency, larger windows).
        alpha: With ``method="test"``: the p-value below which a shift is not noise.
        psi: The PSI at or above which a shift is large enough to matter.
        min_samples: Fewest values of a feature in each window for it to be judged at all.
        confirm: Consecutive evaluations that must find a shift before it is alerted (and
            that must find it gone before the feature counts as recovered).
        cooldown: Seconds after an alert before the same feature may alert again (once it
            recovered).
        semantic: Also watch the meaning of the outputs: a
            :class:`~seawall.observe.semantic.SemanticWatch`, or an embedder (or a function from
            a text to a vector) to watch with its defaults. Needs ``seawall[semantic]``.

    Raises:
        ConfigurationError: An argument is invalid.
        MissingExtraError: ``method="test"`` without SciPy installed (with features to test).
    """

    decision: str | None = None
    features: tuple[str, ...] = DEFAULT_FEATURES
    reference: int | tuple[float, float] = 300
    window: int = 100
    every: int = 10
    method: Method = "test"
    alpha: float = 1e-5
    psi: float = 0.2
    min_samples: int = 50
    confirm: int = 2
    cooldown: float = 3600.0
    semantic: SemanticWatch | None = None

    def __post_init__(self) -> None:  # noqa: C901 - one check per argument
        if self.decision is not None and (
            not isinstance(self.decision, str) or not self.decision.strip()
        ):
            raise ConfigurationError(
                f"DriftWatch(decision={self.decision!r}) must name an output field, e.g. 'action'"
            )
        features = tuple(self.features)
        unknown = [f for f in features if f not in FEATURES or f == "decision"]
        if unknown:
            raise ConfigurationError(
                f"DriftWatch(features=...) has unknown features {unknown}; choose among "
                f"{list(DEFAULT_FEATURES)} (the decision is watched by naming decision=)"
            )
        object.__setattr__(self, "features", features)
        if isinstance(self.reference, list | tuple):
            start, end = (float(x) for x in self.reference)
            if not start < end:
                raise ConfigurationError(
                    f"DriftWatch(reference={self.reference!r}): a pinned period is (start, end) "
                    "with start < end, in Unix seconds"
                )
            object.__setattr__(self, "reference", (start, end))
        else:
            _count("reference", self.reference, 2)
        _count("window", self.window, 2)
        _count("every", self.every, 1)
        _count("min_samples", self.min_samples, 2)
        _count("confirm", self.confirm, 1)
        if self.method not in ("test", "psi"):
            raise ConfigurationError(
                f"DriftWatch(method={self.method!r}) must be 'test' (needs seawall[drift]) or 'psi'"
            )
        if not isinstance(self.alpha, int | float) or not 0 < self.alpha < 1:
            raise ConfigurationError(f"DriftWatch(alpha={self.alpha!r}) must be in (0, 1)")
        if not (is_amount(self.psi) and self.psi > 0):
            raise ConfigurationError(f"DriftWatch(psi={self.psi!r}) must be a positive number")
        if not isinstance(self.cooldown, int | float) or self.cooldown < 0:
            raise ConfigurationError(f"DriftWatch(cooldown={self.cooldown!r}) must be seconds >= 0")
        if self.semantic is not None:
            object.__setattr__(self, "semantic", SemanticWatch.of(self.semantic))
        if self.method == "test" and self.watched:
            scipy_stats()

    @property
    def watched(self) -> tuple[str, ...]:
        """The features compared, the decision first."""
        return ("decision", *self.features) if self.decision is not None else self.features

    def describe_reference(self) -> str:
        """The reference window in words."""
        if isinstance(self.reference, tuple):
            return f"runs finished in the pinned period {utc(self.reference[0])} to " + utc(
                self.reference[1]
            )
        return f"the first {self.reference} runs"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in the ledger, so ``seawall drift`` can evaluate without the app."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "semantic"}
        data["features"] = list(self.features)
        if isinstance(self.reference, tuple):
            data["reference"] = list(self.reference)
        if self.semantic is not None:
            data["semantic"] = self.semantic.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, method: Method | None = None) -> DriftWatch:
        """Rebuild a watch from :meth:`to_dict` (``method`` overrides the stored one)."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if isinstance(values.get("reference"), list):
            values["reference"] = tuple(values["reference"])
        if "features" in values:
            values["features"] = tuple(values["features"])
        if method is not None:
            values["method"] = method
        if values.get("semantic") is not None:
            values["semantic"] = SemanticWatch.from_dict(values["semantic"])
        return cls(**values)


def _count(name: str, value: Any, least: int) -> None:
    if not is_count(value, least):
        raise ConfigurationError(f"DriftWatch({name}={value!r}) must be an integer >= {least}")


def utc(at: float) -> str:
    """Format a Unix time for messages (UTC, seconds)."""
    import datetime as dt  # noqa: PLC0415 - only for messages

    return dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def scipy_stats() -> Any:
    """Return ``scipy.stats`` (a :class:`~seawall.MissingExtraError` without SciPy)."""
    return optional_module(
        "scipy.stats",
        extra="drift",
        needed_by="DriftWatch(method='test') uses SciPy's chi-square and Kolmogorov-Smirnov tests",
        otherwise="or pass method='psi', which needs no library",
    )


# -- samples ------------------------------------------------------------------------------------


def decision_of(output: Any, path: str) -> str | None:
    """Read the decision at ``path`` (dotted) in an output; ``None`` when it is not there."""
    value = field_of(output, path)
    if value is None:
        return None
    if isinstance(value, str):
        return value[:200]
    return json.dumps(value, sort_keys=True, default=str)[:200]


def value_of(sample: DriftSample, feature: str) -> Any:
    """Return one feature of a sample (``None`` when the run has no value for it)."""
    value: Any = getattr(sample, feature)
    if feature == "verified" and value is not None:
        return "passed" if value else "failed"
    return value


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureStat:
    """How one feature of the current window compares with the reference window.

    Attributes:
        feature: The feature.
        kind: ``categorical`` or ``numeric``.
        test: ``chi2``, ``ks`` or ``psi`` (what gave ``p_value``; ``psi`` when there is none).
        psi: The population stability index (``None``: too few samples).
        p_value: The two-sample test's p-value (``None`` with ``method="psi"``, or when the
            monitor skipped the test because the PSI was below its threshold).
        reference_n: Values in the reference window.
        current_n: Values in the current window.
        shifted: Whether this evaluation finds a shift (``None``: too few samples to judge).
        reference: The reference distribution (category shares, or quantiles of numbers).
        current: The current distribution, in the same form.
    """

    feature: str
    kind: str
    test: str
    psi: float | None
    p_value: float | None
    reference_n: int
    current_n: int
    shifted: bool | None
    reference: dict[str, float]
    current: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def psi_of(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two histograms over the same bins (counts).

    Each bin gets a pseudo-count of 0.5 so an empty bin does not make it infinite.
    """
    k = len(expected)
    n = sum(expected) + SMOOTHING * k
    m = sum(actual) + SMOOTHING * k
    total = 0.0
    for e_count, a_count in zip(expected, actual, strict=True):
        e = (e_count + SMOOTHING) / n
        a = (a_count + SMOOTHING) / m
        total += (a - e) * math.log(a / e)
    return total


def _categories(reference: Counter[str], current: Counter[str]) -> list[str | None]:
    """The categories compared: the most common ones; the rest pooled as ``(other)``."""
    pooled = reference + current
    kept: list[str | None] = [
        name
        for name, count in pooled.most_common(MAX_CATEGORIES)
        if count >= 5  # noqa: PLR2004 - chi-square's rule of thumb for expected counts
    ]
    return [*kept, None] if len(kept) < len(pooled) else kept


def _histogram(counts: Counter[str], categories: Sequence[str | None]) -> list[int]:
    named = [counts.get(c, 0) for c in categories if c is not None]
    if None in categories:
        named.append(counts.total() - sum(named))
    return named


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    last = len(ordered) - 1
    return {f"p{q}": float(ordered[min(last, round(q / 100 * last))]) for q in (10, 50, 90)} | {
        "mean": float(sum(ordered) / len(ordered))
    }


def _edges(reference: Sequence[float]) -> list[float]:
    """Bin edges at the reference's deciles (distinct values only)."""
    ordered = sorted(reference)
    last = len(ordered) - 1
    edges = {ordered[round(i / BINS * last)] for i in range(1, BINS)}
    return sorted(edges)


def _bins(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect.bisect_right(edges, value)] += 1
    return counts


@dataclass(frozen=True, slots=True)
class Baseline:
    """One feature of a reference window, prepared once and compared with many windows.

    Attributes:
        kind: ``categorical`` or ``numeric``.
        values: Its values (``None`` left out; numbers as floats).
        counts: Categories and their counts (categorical).
        edges: Bin edges at its deciles (numeric).
        bins: Its counts per bin (numeric).
        shape: Its quantiles and mean (numeric).
    """

    kind: str
    values: list[Any]
    counts: Counter[str]
    edges: list[float]
    bins: list[int]
    shape: dict[str, float]

    @classmethod
    def of(cls, feature: str, values: Sequence[Any]) -> Baseline:
        """Prepare one feature's reference values."""
        kept = [v for v in values if v is not None]
        if feature in CATEGORICAL_FEATURES:
            return cls("categorical", kept, Counter(kept), [], [], {})
        numbers = [float(v) for v in kept]
        if not numbers:
            return cls("numeric", numbers, Counter(), [], [], {})
        edges = _edges(numbers)
        return cls("numeric", numbers, Counter(), edges, _bins(numbers, edges), _quantiles(numbers))


def prepare(watch: DriftWatch, reference: Sequence[DriftSample]) -> dict[str, Baseline]:
    """Prepare every watched feature of a reference window."""
    return {
        feature: Baseline.of(feature, [value_of(s, feature) for s in reference])
        for feature in watch.watched
    }


def compare_feature(
    watch: DriftWatch,
    feature: str,
    reference: Sequence[Any] | Baseline,
    current: Sequence[Any],
    *,
    p_values: bool = True,
) -> FeatureStat:
    """Compare one feature's reference and current values (``None`` values are left out).

    With ``p_values=False`` the test runs only when the PSI reaches the threshold (below it
    the p-value cannot make a shift): the monitor's evaluations skip most tests that way.
    """
    base = reference if isinstance(reference, Baseline) else Baseline.of(feature, reference)
    ref = base.values
    cur = [v for v in current if v is not None]
    kind = base.kind
    if len(ref) < watch.min_samples or len(cur) < watch.min_samples:
        return FeatureStat(feature, kind, _test_name(watch, kind), None, None, len(ref), len(cur),
                           None, {}, {})  # fmt: skip
    p_value: float | None = None
    if kind == "categorical":
        cur_counter = Counter(cur)
        categories = _categories(base.counts, cur_counter)
        ref_counts = _histogram(base.counts, categories)
        cur_counts = _histogram(cur_counter, categories)
        psi = psi_of(ref_counts, cur_counts)
        names = [OTHER if c is None else c for c in categories]
        ref_shape = {n: c / len(ref) for n, c in zip(names, ref_counts, strict=True)}
        cur_shape = {n: c / len(cur) for n, c in zip(names, cur_counts, strict=True)}
        if watch.method == "test" and (p_values or psi >= watch.psi):
            p_value = _chi2_p(ref_counts, cur_counts)
    else:
        cur_f = [float(v) for v in cur]
        psi = psi_of(base.bins, _bins(cur_f, base.edges))
        ref_shape = base.shape
        cur_shape = _quantiles(cur_f)
        if watch.method == "test" and (p_values or psi >= watch.psi):
            p_value = _ks_p(ref, cur_f)
    shifted = psi >= watch.psi and (
        watch.method == "psi" or (p_value is not None and p_value < watch.alpha)
    )
    return FeatureStat(
        feature,
        kind,
        _test_name(watch, kind),
        psi,
        p_value,
        len(ref),
        len(cur),
        shifted,
        ref_shape,
        cur_shape,
    )


def _test_name(watch: DriftWatch, kind: str) -> str:
    if watch.method == "psi":
        return "psi"
    return "chi2" if kind == "categorical" else "ks"


def _chi2_p(ref_counts: Sequence[int], cur_counts: Sequence[int]) -> float:
    columns = [(r, c) for r, c in zip(ref_counts, cur_counts, strict=True) if r + c > 0]
    if len(columns) < 2:  # noqa: PLR2004 - one category: nothing can have moved
        return 1.0
    table = [[r for r, _ in columns], [c for _, c in columns]]
    return float(scipy_stats().chi2_contingency(table).pvalue)


def _ks_p(ref: Sequence[float], cur: Sequence[float]) -> float:
    if min(ref) == max(ref) == min(cur) == max(cur):
        return 1.0
    return float(scipy_stats().ks_2samp(ref, cur).pvalue)


def compare(
    watch: DriftWatch,
    reference: Sequence[DriftSample] | Mapping[str, Baseline],
    current: Sequence[DriftSample],
    *,
    p_values: bool = True,
) -> list[FeatureStat]:
    """Compare every watched feature of two windows (the reference as samples or prepared)."""
    baselines = reference if isinstance(reference, Mapping) else prepare(watch, reference)
    return [
        compare_feature(
            watch,
            feature,
            baselines[feature],
            [value_of(s, feature) for s in current],
            p_values=p_values,
        )
        for feature in watch.watched
    ]


# -- hysteresis ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureState:
    """Where one feature stands between evaluations (kept in the ledger).

    Attributes:
        streak: Consecutive evaluations that found a shift.
        calm: Consecutive evaluations that found it gone, while shifted.
        shifted: Whether it was alerted and has not recovered since.
        last_alert: When it last alerted.
    """

    streak: int = 0
    calm: int = 0
    shifted: bool = False
    last_alert: float | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> FeatureState:
        """Read the JSON form (an empty state for ``None``)."""
        if not data:
            return cls()
        return cls(
            streak=int(data.get("streak", 0)),
            calm=int(data.get("calm", 0)),
            shifted=bool(data.get("shifted", False)),
            last_alert=data.get("last_alert"),
        )


def advance(
    watch: DriftWatch, state: FeatureState, stat: FeatureStat, now: float
) -> tuple[FeatureState, bool]:
    """Fold one evaluation into a feature's state; return the new state and whether to alert."""
    if stat.shifted is None or stat.psi is None:
        return state, False
    return hold(watch, state, shifted=stat.shifted, calm=stat.psi < watch.psi / 2, now=now)


def hold(
    watch: DriftWatch, state: FeatureState, *, shifted: bool, calm: bool, now: float
) -> tuple[FeatureState, bool]:
    """The hysteresis of one judged evaluation: ``shifted`` now, or ``calm`` (well below it)."""
    if shifted:
        streak = state.streak + 1
        cooled = state.last_alert is None or now - state.last_alert >= watch.cooldown
        if not state.shifted and streak >= watch.confirm and cooled:
            return FeatureState(streak=streak, shifted=True, last_alert=now), True
        return replace(state, streak=streak, calm=0), False
    if not state.shifted:
        return replace(state, streak=0, calm=0), False
    if calm:
        count = state.calm + 1
        if count >= watch.confirm:
            return FeatureState(last_alert=state.last_alert), False
        return replace(state, streak=0, calm=count), False
    return replace(state, streak=0, calm=0), False


def describe_shift(stat: FeatureStat) -> str:
    """One line saying how a feature moved."""
    if stat.kind == "categorical":
        ref = ", ".join(f"{k} {v:.0%}" for k, v in stat.reference.items())
        cur = ", ".join(f"{k} {v:.0%}" for k, v in stat.current.items())
    else:
        ref = ", ".join(f"{k} {v:.4g}" for k, v in stat.reference.items())
        cur = ", ".join(f"{k} {v:.4g}" for k, v in stat.current.items())
    test = "" if stat.p_value is None else f", {stat.test} p={stat.p_value:.2g}"
    return f"{stat.feature} moved from [{ref}] to [{cur}] (PSI {stat.psi:.3f}{test})"
