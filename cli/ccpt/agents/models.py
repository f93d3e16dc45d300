"""What ccpt knows about Claude models: aliases, prices, prompt-cache floors, usage and cost.

The numbers live in `models.toml` beside this module (data, not code), so a price change is a
one-line edit. Reading it needs only a TOML parser (the standard library's), which keeps
`ccpt agent list` fast.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ccpt import toml
from ccpt.errors import CcptError

MODELS_FILE = Path(__file__).with_name("models.toml")
INHERIT = "inherit"
_DATE_SUFFIX = re.compile(r"-\d{8}$")
_DEFAULT_MIN_CACHEABLE = 1024


@dataclass(frozen=True)
class Prices:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float


@dataclass(frozen=True)
class ModelCard:
    id: str
    prices: Prices | None
    min_cacheable_tokens: int
    min_cacheable_assumed: bool = False
    long_prompt_threshold: int | None = None
    long_prompt_prices: Prices | None = None

    def prices_for(self, prompt_tokens: int) -> Prices | None:
        """The rates a request with `prompt_tokens` of prompt is billed at."""
        if self.long_prompt_threshold is not None and prompt_tokens > self.long_prompt_threshold:
            return self.long_prompt_prices
        return self.prices


@dataclass(frozen=True)
class Usage:
    """Tokens of one or more requests, as the API reports them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_api(cls, usage: Any) -> Usage:
        """From the SDK's `Usage` object (missing cache fields count as zero)."""
        return cls(
            input_tokens=getattr(usage, "input_tokens", 0) or 0,
            output_tokens=getattr(usage, "output_tokens", 0) or 0,
            cache_write_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
            cache_read_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
        )


@cache
def _table() -> dict[str, Any]:
    try:
        return toml.loads(MODELS_FILE.read_text(encoding="utf-8"))
    except (OSError, toml.TOMLDecodeError) as exc:
        raise CcptError(f"{MODELS_FILE}: cannot read the model table: {exc}", hint="reinstall ccpt") from exc


def aliases() -> dict[str, str]:
    """`opus`, `sonnet`, `haiku` -> the current model id of that family."""
    return dict(_table()["aliases"])


def resolve_model(name: str) -> str:
    """A model id from an alias (`sonnet`) or an id (`claude-sonnet-5-5`), unchanged otherwise."""
    return aliases().get(name.strip().lower(), name.strip())


def _prices(data: dict[str, Any]) -> Prices:
    return Prices(
        float(data["input"]), float(data["output"]), float(data["cache_write"]), float(data["cache_read"])
    )


def model_card(model_id: str) -> ModelCard:
    """The card for `model_id` (a dated id falls back to its undated family); unknown: no prices."""
    models = _table()["models"]
    data = models.get(model_id) or models.get(_DATE_SUFFIX.sub("", model_id))
    if data is None:
        return ModelCard(model_id, None, _DEFAULT_MIN_CACHEABLE, min_cacheable_assumed=True)
    long_prompt = data.get("long_prompt")
    return ModelCard(
        id=model_id,
        prices=_prices(data),
        min_cacheable_tokens=int(data["min_cacheable_tokens"]),
        min_cacheable_assumed=bool(data.get("min_cacheable_assumed", False)),
        long_prompt_threshold=int(long_prompt["threshold_tokens"]) if long_prompt else None,
        long_prompt_prices=_prices(long_prompt) if long_prompt else None,
    )


def cost_usd(model_id: str, usage: Usage) -> float | None:
    """Dollars for `usage` on `model_id`; None when the model has no price in the table."""
    prices = model_card(model_id).prices_for(usage.prompt_tokens)
    if prices is None:
        return None
    dollars = (
        usage.input_tokens * prices.input
        + usage.output_tokens * prices.output
        + usage.cache_write_tokens * prices.cache_write
        + usage.cache_read_tokens * prices.cache_read
    ) / 1_000_000
    return round(dollars, 6)


def deprecation_notice(model_id: str) -> str | None:
    """When the SDK lists `model_id` as deprecated: a one-line notice naming its retirement date."""
    from anthropic._data import DEPRECATED_MODELS

    retires = DEPRECATED_MODELS.get(model_id)
    if retires is None:
        return None
    when = "was retired" if _is_past(retires) else "retires"
    return f"{model_id} is deprecated and {when} on {retires}; use {aliases()['sonnet']} or --model opus"


def _is_past(sdk_date: str) -> bool:
    """Whether a date as the SDK writes it ("January 22nd, 2027") is before today; False when it
    cannot be read, so that an unexpected format still gives the SDK's own words."""
    import datetime
    import re

    try:
        day = datetime.datetime.strptime(re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", sdk_date), "%B %d, %Y")
    except ValueError:
        return False
    return day.date() < datetime.date.today()
