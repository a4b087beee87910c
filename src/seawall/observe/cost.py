"""What an LLM call cost: the user's prices first, then a maintained price table.

The table is the ``genai-prices`` package (``pip install 'seawall[prices]'``), maintained by
the Pydantic team from providers' published prices, with tiered and cached-token prices. We
use the snapshot the installed package ships and never fetch prices during a run: upgrading the
package updates the table. Without it, only ``Seawall(prices=...)`` and costs the caller reports
are known; every other model is reported as unpriced, never priced at zero.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from seawall.errors import ConfigurationError

PriceSource = Literal["reported", "override", "genai-prices", "unpriced", "no-usage"]
"""Where a cost came from; ``unpriced`` and ``no-usage`` mean the cost is unknown."""

_PER_MTOK: Final = 1_000_000
_UNLOADED: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class Price:
    """A model's price in US dollars per million tokens.

    Attributes:
        input_per_mtok: Prompt tokens.
        output_per_mtok: Completion tokens.
    """

    input_per_mtok: float
    output_per_mtok: float

    def __post_init__(self) -> None:
        for label, value in (
            ("input_per_mtok", self.input_per_mtok),
            ("output_per_mtok", self.output_per_mtok),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigurationError(
                    f"Price({label}={value!r}) must be a non-negative number of US dollars per "
                    "million tokens"
                )


@dataclass(frozen=True, slots=True)
class Cost:
    """The priced usage of one LLM call.

    Attributes:
        usd: The cost, or ``None`` when unknown.
        source: Where it came from.
    """

    usd: float | None
    source: PriceSource


class PriceTable:
    """Prices LLM calls: user overrides by model name, then the ``genai-prices`` table.

    Args:
        overrides: ``{model: Price}`` (or ``{model: {"input": usd, "output": usd}}`` per
            million tokens); they win over the table.
        catalogue: Whether to consult ``genai-prices`` when it is installed.

    Raises:
        ConfigurationError: An override is not a price.
    """

    def __init__(
        self,
        overrides: Mapping[str, Price | Mapping[str, float]] | None = None,
        *,
        catalogue: bool = True,
    ) -> None:
        if overrides is not None and not isinstance(overrides, Mapping):
            raise ConfigurationError(
                f"Seawall(prices={overrides!r}) must map model names to seawall.Price(...)"
            )
        self.overrides: dict[str, Price] = {
            str(model): _price_of(model, price) for model, price in (overrides or {}).items()
        }
        self._use_catalogue = catalogue
        self._catalogue: Any = _UNLOADED

    @property
    def catalogue(self) -> Any:
        """The ``genai_prices`` module, or ``None`` when off or not installed.

        Loaded on first use: importing it (and Pydantic) costs a few hundred milliseconds that a
        run without LLM calls should not pay.
        """
        if self._catalogue is _UNLOADED:
            self._catalogue = _load_catalogue() if self._use_catalogue else None
        return self._catalogue

    def cost(
        self,
        model: str,
        input_tokens: int | None,
        output_tokens: int | None,
        *,
        provider: str | None = None,
    ) -> Cost:
        """Price one call; unknown tokens or an unknown model give an unknown cost."""
        if input_tokens is None and output_tokens is None:
            return Cost(None, "no-usage")
        tokens_in, tokens_out = input_tokens or 0, output_tokens or 0
        price = self.overrides.get(model)
        if price is not None:
            usd = (
                tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok
            ) / _PER_MTOK
            return Cost(usd, "override")
        catalogue = self.catalogue
        if catalogue is None:
            return Cost(None, "unpriced")
        try:
            found = catalogue.calc_price(
                catalogue.Usage(input_tokens=tokens_in, output_tokens=tokens_out),
                model,
                provider_id=provider,
            )
        except LookupError:
            return Cost(None, "unpriced")
        return Cost(float(found.total_price), "genai-prices")


def _price_of(model: object, price: object) -> Price:
    if isinstance(price, Price):
        return price
    if isinstance(price, Mapping) and set(price) == {"input", "output"}:
        return Price(price["input"], price["output"])
    raise ConfigurationError(
        f"Seawall(prices={{{model!r}: {price!r}}}): give seawall.Price(input_per_mtok=..., "
        'output_per_mtok=...) or {"input": usd, "output": usd} per million tokens'
    )


def _load_catalogue() -> Any:
    try:
        return importlib.import_module("genai_prices")
    except ImportError:
        return None


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """The usage of one LLM call as the journal recorded it (``None``: unknown)."""

    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


@dataclass(slots=True)
class UsageTotals:
    """A run's usage: the calls its result stands on, and those a retry superseded.

    A call served again from the journal on a later attempt counts once. The usage of calls a
    later attempt made again (a drift retry's fresh reads, a superseded journal tail) counts as
    ``retried_*``, apart from the totals, so retries are visible and nothing counts twice.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    unknown_usage: int = 0
    unpriced: int = 0
    retried_input_tokens: int = 0
    retried_output_tokens: int = 0
    retried_cost_usd: float = 0.0

    def add(self, entry: UsageEntry) -> None:
        """Count one call the run's result stands on."""
        self.calls += 1
        if entry.input_tokens is None and entry.output_tokens is None:
            self.unknown_usage += 1
        self.input_tokens += entry.input_tokens or 0
        self.output_tokens += entry.output_tokens or 0
        if entry.cost_usd is None:
            self.unpriced += 1
        else:
            self.cost_usd += entry.cost_usd

    def add_retried(self, entry: UsageEntry) -> None:
        """Count one call a later attempt superseded."""
        self.retried_input_tokens += entry.input_tokens or 0
        self.retried_output_tokens += entry.output_tokens or 0
        self.retried_cost_usd += entry.cost_usd or 0.0


def usage_entry(request: Any, response: Any) -> UsageEntry:
    """Read a usage step: the caller's figures (request) and the priced cost (response)."""
    cost = request.get("cost_usd")
    if isinstance(response, Mapping) and "cost_usd" in response:
        cost = response["cost_usd"]
    tokens_in, tokens_out = request.get("input_tokens"), request.get("output_tokens")
    return UsageEntry(
        None if tokens_in is None else int(tokens_in),
        None if tokens_out is None else int(tokens_out),
        None if cost is None else float(cost),
    )
