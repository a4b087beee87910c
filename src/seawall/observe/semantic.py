"""Semantic drift: whether an agent's outputs moved in meaning, from embeddings of them.

The numeric and categorical features of :mod:`seawall.observe.drift` miss an agent whose
answers drift to another topic, tone or format at the same length and cost. Here each output
(or a field of it) is embedded by a model; the embeddings of the current window are compared
with those of the reference window:

- the **shift**, ``1 - cos(reference centroid, current centroid)``, is the effect size: how far
  the average meaning moved (0 for none; paraphrases of the same answers stay below a few
  hundredths, another topic or format moves by tenths);
- the **energy distance** between the two windows' embeddings, with a permutation p-value,
  says whether that move can be sampling noise. It compares whole distributions, so a new
  cluster of answers counts even while the others stay put.

A window has shifted when the shift reaches ``min_shift`` *and* the p-value is below ``alpha``:
the test guards small windows, the floor keeps rewordings (which any test finds "significant"
with enough runs) from alerting. The evidence of a shift is the reference output nearest the
reference centroid (what the agent typically said) and the current outputs farthest from every
reference output (what it says now that it never said).

Embeddings are unit vectors stored as one signed byte per dimension and a scale
(:func:`quantise`): 384 bytes a run for a MiniLM model, a cosine error under 0.001.

NumPy does the arithmetic (``pip install 'seawall[semantic]'``); it is imported on first use.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from seawall._extras import optional_module
from seawall.errors import ConfigurationError
from seawall.policies._arguments import is_count

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from seawall.ledger import DriftEmbedding

    Matrix = npt.NDArray[np.float64]

MAX_TEXT: Final = 8_000
"""Characters of an output embedded at most (embedding models read a few hundred words)."""
MAX_TESTED: Final = 500
"""Reference embeddings the permutation test uses at most (evenly spaced); all make the centroid."""
SEED: Final = 20_250_101
"""Seed of the permutations, so one window always gets the same p-value."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors, many at a time."""

    @property
    def name(self) -> str:
        """The model's name, recorded with each embedding.

        Embeddings of different models are never compared: a new model starts a new reference
        window.
        """

    def embed(self, texts: Sequence[str]) -> Any:
        """Return one vector per text (an array of shape ``(len(texts), dims)`` or a list)."""


@dataclass(frozen=True, slots=True)
class PerText:
    """An :class:`Embedder` made of a plain function from one text to one vector.

    Args:
        fn: ``fn(text) -> vector``.
        name: The model's name (default: the function's module and name).
    """

    fn: Callable[[str], Sequence[float]]
    name: str = ""

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigurationError(f"PerText({self.fn!r}) needs a function from text to vector")
        if not self.name:
            label = getattr(self.fn, "__qualname__", None) or type(self.fn).__name__
            object.__setattr__(self, "name", f"{getattr(self.fn, '__module__', '')}.{label}")

    def embed(self, texts: Sequence[str]) -> list[Sequence[float]]:
        """Call the function on each text."""
        return [self.fn(text) for text in texts]


@dataclass(frozen=True, slots=True)
class SemanticWatch:
    """How an agent's outputs are watched for a shift in meaning.

    Args:
        embedder: What embeds the outputs: an :class:`Embedder` (such as
            ``seawall.integrations.embeddings.SentenceTransformerEmbedder``) or a function
            from a text to a vector. ``None`` only when evaluating from the ledger (the CLI).
        text: What of an output is embedded: ``None`` for all of it (a string as it is,
            anything else as JSON), an output field (a dotted path such as ``"reply.body"``),
            or a function from the output to a string (``None`` skips the run).
        model: The name embeddings are recorded under (default: the embedder's ``name``).
        alpha: The permutation p-value below which a shift is not noise.
        min_shift: The centroid shift (``1 - cosine``) at or above which a move matters.
        permutations: Permutations of the energy test (its smallest p-value is
            ``1 / (permutations + 1)``).
        examples: How many of the most shifted current outputs an alert quotes.
        excerpt: Characters of each output kept in the ledger for the evidence.

    Raises:
        ConfigurationError: An argument is invalid.
    """

    embedder: Embedder | Callable[[str], Sequence[float]] | None = None
    text: str | Callable[[Any], str | None] | None = None
    model: str = ""
    alpha: float = 0.01
    min_shift: float = 0.1
    permutations: int = 999
    examples: int = 3
    excerpt: int = 300
    _embedder: Embedder | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        embedder = _embedder_of(self.embedder)
        object.__setattr__(self, "_embedder", embedder)
        if not self.model:
            if embedder is None:
                raise ConfigurationError(
                    "SemanticWatch needs an embedder (or, to evaluate from the ledger, a model=)"
                )
            object.__setattr__(self, "model", str(embedder.name))
        if not (self.text is None or callable(self.text)) and (
            not isinstance(self.text, str) or not self.text.strip()
        ):
            raise ConfigurationError(
                f"SemanticWatch(text={self.text!r}) must be an output field such as 'reply' or "
                "'reply.body', a function of the output, or None"
            )
        if not isinstance(self.permutations, int) or not 99 <= self.permutations <= 100_000:  # noqa: PLR2004 - a p-value resolution of 1%
            raise ConfigurationError(
                f"SemanticWatch(permutations={self.permutations!r}) must be an integer in "
                "[99, 100000]"
            )
        floor = 1 / (self.permutations + 1)
        if not isinstance(self.alpha, int | float) or not floor < self.alpha < 1:
            raise ConfigurationError(
                f"SemanticWatch(alpha={self.alpha!r}) must be in ({floor:.2g}, 1): with "
                f"{self.permutations} permutations no p-value is below {floor:.2g}"
            )
        shift = self.min_shift
        if not isinstance(shift, int | float) or not math.isfinite(shift) or not 0 < shift <= 2:  # noqa: PLR2004 - a cosine distance is at most 2
            raise ConfigurationError(f"SemanticWatch(min_shift={shift!r}) must be in (0, 2]")
        for label, least in (("examples", 1), ("excerpt", 20)):
            value = getattr(self, label)
            if not is_count(value, least):
                raise ConfigurationError(
                    f"SemanticWatch({label}={value!r}) must be an integer >= {least}"
                )

    @classmethod
    def of(cls, value: Any) -> SemanticWatch:
        """Turn ``DriftWatch(semantic=...)`` into a watch (an embedder or function is wrapped).

        Raises:
            ConfigurationError: ``value`` is neither a watch, an embedder nor a function.
        """
        return value if isinstance(value, SemanticWatch) else cls(embedder=value)

    def embed(self, texts: Sequence[str]) -> Matrix:
        """Embed ``texts`` as unit vectors, one row each.

        Raises:
            ConfigurationError: There is no embedder, or it answered something that is not
                one finite, non-zero vector of one length per text.
        """
        if self._embedder is None:
            raise ConfigurationError(
                f"SemanticWatch(model={self.model!r}) has no embedder: it can only evaluate "
                "embeddings already in the ledger"
            )
        np = numpy()
        try:
            vectors = np.asarray(self._embedder.embed(list(texts)), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"embedder {self.model!r} answered something that is not a list of vectors "
                f"of one length: {exc}"
            ) from exc
        if vectors.ndim != 2 or len(vectors) != len(texts):  # noqa: PLR2004 - rows by dims
            raise ConfigurationError(
                f"embedder {self.model!r} answered shape {vectors.shape} for {len(texts)} "
                "texts; it must return one vector per text"
            )
        norms = np.linalg.norm(vectors, axis=1)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise ConfigurationError(
                f"embedder {self.model!r} answered a zero, infinite or NaN vector"
            )
        normed: Matrix = vectors / norms[:, None]
        return normed

    def text_of(self, output: Any) -> str | None:
        """The text of ``output`` to embed (``None``: nothing to embed)."""
        if callable(self.text):
            found = self.text(output)
            return found[:MAX_TEXT] if isinstance(found, str) and found.strip() else None
        value = output if self.text is None else field_of(output, self.text)
        if value is None:
            return None
        if not isinstance(value, str):
            value = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
        return value[:MAX_TEXT] if value.strip() else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in the ledger (the embedder itself is not)."""
        return {
            "model": self.model,
            "text": self.text if isinstance(self.text, str) else None,
            "alpha": self.alpha,
            "min_shift": self.min_shift,
            "permutations": self.permutations,
            "examples": self.examples,
            "excerpt": self.excerpt,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SemanticWatch:
        """Rebuild a watch without an embedder from :meth:`to_dict` (to evaluate the ledger)."""
        names = ("model", "text", "alpha", "min_shift", "permutations", "examples", "excerpt")
        return cls(**{k: data[k] for k in names if k in data})


def _embedder_of(value: Any) -> Embedder | None:
    if value is None or isinstance(value, Embedder):
        return value
    if callable(value):
        return PerText(value)
    raise ConfigurationError(
        f"SemanticWatch(embedder={value!r}) must be an embedder (an object with name and "
        "embed(texts)) or a function from a text to a vector"
    )


def field_of(output: Any, path: str) -> Any:
    """The value at ``path`` (dotted) in an output; ``None`` when it is not there."""
    value = output
    for part in path.split("."):
        if isinstance(value, Mapping):
            if part not in value:
                return None
            value = value[part]
        elif hasattr(value, part):
            value = getattr(value, part)
        else:
            return None
    return value


def numpy() -> Any:
    """Return ``numpy`` (a :class:`~seawall.MissingExtraError` without NumPy)."""
    return optional_module(
        "numpy",
        extra="semantic",
        needed_by="DriftWatch(semantic=...) compares embeddings with NumPy",
    )


# -- storage ------------------------------------------------------------------------------------


def quantise(vector: Sequence[float] | Matrix) -> tuple[float, bytes]:
    """A unit vector as ``(scale, codes)``: one signed byte per dimension, ``codes * scale``."""
    np = numpy()
    values = np.asarray(vector, dtype=np.float64)
    peak = float(np.max(np.abs(values)))
    scale = peak / 127 if peak > 0 else 1.0
    codes = np.clip(np.rint(values / scale), -127, 127).astype(np.int8)
    return scale, codes.tobytes()


def dequantise(embeddings: Sequence[DriftEmbedding]) -> Matrix:
    """Stored embeddings as unit vectors, one row each (of the most common length)."""
    np = numpy()
    rows = [np.frombuffer(e.vector, dtype=np.int8) * e.scale for e in embeddings]
    matrix = np.vstack(rows).astype(np.float64)
    norms = np.linalg.norm(matrix, axis=1)
    norms[norms == 0] = 1.0
    unit: Matrix = matrix / norms[:, None]
    return unit


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Example:
    """One output quoted as evidence.

    Attributes:
        run_id: Its run.
        text: The start of what was embedded.
        similarity: Cosine similarity to the reference: for the typical reference output, to the
            reference centroid; for a shifted one, to its nearest reference output.
    """

    run_id: str
    text: str
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"run_id": self.run_id, "text": self.text, "similarity": self.similarity}


@dataclass(frozen=True, slots=True)
class SemanticStat:
    """How the meaning of the current window's outputs compares with the reference window.

    Attributes:
        model: The embedding model.
        shift: ``1 - cos`` between the windows' centroids (``None``: too few embeddings).
        energy: The energy distance between the windows (``None``: not computed).
        p_value: The permutation p-value of the energy distance (``None``: not computed;
            the monitor skips it while the shift is below ``min_shift``).
        permutations: Permutations the p-value was computed with.
        reference_n: Embeddings in the reference window.
        current_n: Embeddings in the current window.
        shifted: Whether this evaluation finds a shift (``None``: too few embeddings).
        typical: The reference output nearest the reference centroid.
        most_shifted: The current outputs farthest from every reference output, farthest first.
    """

    model: str
    shift: float | None
    energy: float | None
    p_value: float | None
    permutations: int
    reference_n: int
    current_n: int
    shifted: bool | None
    typical: Example | None = None
    most_shifted: tuple[Example, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the evidence of an alert's ``details``)."""
        return {
            "feature": "semantic",
            "test": "energy",
            "model": self.model,
            "shift": self.shift,
            "energy": self.energy,
            "p_value": self.p_value,
            "permutations": self.permutations,
            "reference_n": self.reference_n,
            "current_n": self.current_n,
            "shifted": self.shifted,
            "typical_reference": None if self.typical is None else self.typical.to_dict(),
            "most_shifted": [e.to_dict() for e in self.most_shifted],
        }

    def describe(self) -> str:
        """One line saying how the meaning moved."""
        test = "" if self.p_value is None else f", energy test p={self.p_value:.2g}"
        return (
            f"the meaning of its outputs moved {self.shift or 0.0:.3f} from the reference "
            f"(centroid cosine distance, {self.model}{test})"
        )


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference window's embeddings, prepared once and compared with many windows.

    Attributes:
        embeddings: The stored embeddings, in finishing order.
        vectors: Their unit vectors, one row each.
        centroid: The mean of the vectors.
        tested: The rows the permutation test uses (at most :data:`MAX_TESTED`).
        typical: The row nearest the centroid.
    """

    embeddings: tuple[DriftEmbedding, ...]
    vectors: Matrix
    centroid: Matrix
    tested: Matrix
    typical: int

    @classmethod
    def of(cls, embeddings: Sequence[DriftEmbedding]) -> Reference:
        """Prepare a reference window (at least one embedding)."""
        np = numpy()
        vectors = dequantise(embeddings)
        centroid = vectors.mean(axis=0)
        picked = np.linspace(0, len(vectors) - 1, min(len(vectors), MAX_TESTED)).round()
        typical = int(np.argmax(vectors @ centroid))
        return cls(tuple(embeddings), vectors, centroid, vectors[picked.astype(int)], typical)


def compare(
    watch: SemanticWatch,
    reference: Reference | None,
    current: Sequence[DriftEmbedding],
    *,
    min_samples: int,
    p_values: bool = True,
) -> SemanticStat:
    """Compare the current window's embeddings with the reference window's.

    With ``p_values=False`` the permutation test runs only when the shift reaches
    ``min_shift`` (below it the p-value cannot make a shift).
    """
    reference_n = 0 if reference is None else len(reference.embeddings)
    if reference is None or reference_n < min_samples or len(current) < min_samples:
        return SemanticStat(
            watch.model, None, None, None, watch.permutations, reference_n, len(current), None
        )
    np = numpy()
    vectors = dequantise(current)
    shift = centroid_shift(reference.centroid, vectors.mean(axis=0))
    energy = p_value = None
    if p_values or shift >= watch.min_shift:
        energy, p_value = energy_test(reference.tested, vectors, watch.permutations)
    nearest = (vectors @ reference.vectors.T).max(axis=1)
    order = np.argsort(nearest, kind="stable")
    shown: list[Example] = []
    seen: set[str] = set()
    for row in order:
        if len(shown) == watch.examples:
            break
        item = current[int(row)]
        if item.excerpt not in seen:
            seen.add(item.excerpt)
            shown.append(Example(item.run_id, item.excerpt, float(nearest[row])))
    typical = reference.embeddings[reference.typical]
    centroid_norm = float(np.linalg.norm(reference.centroid)) or 1.0
    return SemanticStat(
        model=watch.model,
        shift=shift,
        energy=energy,
        p_value=p_value,
        permutations=watch.permutations,
        reference_n=reference_n,
        current_n=len(current),
        shifted=shift >= watch.min_shift and p_value is not None and p_value < watch.alpha,
        typical=Example(
            typical.run_id,
            typical.excerpt,
            float(reference.vectors[reference.typical] @ reference.centroid) / centroid_norm,
        ),
        most_shifted=tuple(shown),
    )


def centroid_shift(reference: Matrix, current: Matrix) -> float:
    """``1 - cos`` between two centroids (0 when either is the zero vector)."""
    np = numpy()
    norms = float(np.linalg.norm(reference) * np.linalg.norm(current))
    if norms == 0:
        return 0.0
    return float(1.0 - float(reference @ current) / norms)


def energy_test(reference: Matrix, current: Matrix, permutations: int) -> tuple[float, float]:
    """The energy distance of two samples of unit vectors and its permutation p-value.

    All permutations are scored at once: with ``D`` the pooled distance matrix and ``L`` the
    0/1 matrix of which rows each permutation puts in the reference sample, the within-sample
    sums are the row sums of ``(L @ D) * L``, and the rest follows from the totals.
    """
    np = numpy()
    pooled = np.vstack([reference, current])
    m, total = len(reference), len(pooled)
    n = total - m
    distances = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * (pooled @ pooled.T)))
    row_sums = distances.sum(axis=1)
    grand = float(row_sums.sum())
    rng = np.random.default_rng(SEED)
    order = rng.random((permutations, total)).argsort(axis=1)[:, :m]
    labels = np.zeros((permutations + 1, total))
    labels[np.arange(permutations)[:, None], order] = 1.0
    labels[permutations, :m] = 1.0  # the observed split, last
    within_ref = ((labels @ distances) * labels).sum(axis=1)
    across = labels @ row_sums - within_ref
    within_cur = grand - 2.0 * across - within_ref
    energy = 2.0 * across / (m * n) - within_ref / (m * m) - within_cur / (n * n)
    observed = float(energy[-1])
    exceeded = int(np.count_nonzero(energy[:-1] >= observed - 1e-12))
    return observed, (exceeded + 1) / (permutations + 1)
