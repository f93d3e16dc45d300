"""Model ids, aliases and the price table: current models by default, costs from data."""

from __future__ import annotations

import typing

import pytest
from anthropic._data import DEPRECATED_MODELS
from anthropic.types.model_param import ModelParam

from ccpt.agents.models import Usage, aliases, cost_usd, deprecation_notice, model_card, resolve_model
from ccpt.config import DEFAULT_MODEL
from tests.conftest import deprecated_model

SDK_MODELS = set(typing.get_args(typing.get_args(ModelParam)[0]))


def test_the_default_model_and_every_alias_are_current_sdk_models() -> None:
    for model in (DEFAULT_MODEL, *aliases().values()):
        assert model in SDK_MODELS, model
        assert model not in DEPRECATED_MODELS, model
    assert resolve_model("opus") == "claude-opus-5-5"
    assert resolve_model("Sonnet") == "claude-sonnet-5-5"
    assert resolve_model("haiku") == "claude-haiku-5-5"
    assert resolve_model("claude-opus-4-8") == "claude-opus-4-8"


def test_every_priced_model_is_one_the_sdk_knows() -> None:
    import tomllib

    from ccpt.agents.models import MODELS_FILE

    assert set(tomllib.loads(MODELS_FILE.read_text())["models"]) <= SDK_MODELS


def test_cost_counts_each_kind_of_token_at_its_own_rate() -> None:
    usage = Usage(
        input_tokens=1_000_000, output_tokens=100_000, cache_write_tokens=200_000, cache_read_tokens=2_000_000
    )
    # Sonnet 5.5: $2 input, $10 output, $2.50 cache write, $0.10 cache read per MTok.
    assert cost_usd("claude-sonnet-5-5", usage) == pytest.approx(2.0 + 1.0 + 0.5 + 0.2)
    # A dated id is priced as its family.
    assert cost_usd("claude-haiku-4-5-20251001", Usage(output_tokens=1_000_000)) == pytest.approx(5.0)


def test_haiku_long_prompts_are_billed_at_the_higher_tier() -> None:
    short = Usage(input_tokens=50_000, output_tokens=1_000)
    long = Usage(input_tokens=150_000, output_tokens=1_000)
    assert cost_usd("claude-haiku-5-5", short) == pytest.approx((50_000 * 0.10 + 1_000 * 0.50) / 1e6)
    assert cost_usd("claude-haiku-5-5", long) == pytest.approx((150_000 * 0.50 + 1_000 * 2.50) / 1e6)


def test_an_unpriced_model_has_no_cost_rather_than_a_wrong_one() -> None:
    assert cost_usd("claude-fable-5-2", Usage(input_tokens=10)) is None
    assert model_card("claude-fable-5-2").min_cacheable_tokens > 0


def test_deprecated_models_get_a_one_line_notice() -> None:
    model, retires = deprecated_model()
    notice = deprecation_notice(model)
    assert notice and retires in notice and "\n" not in notice
    assert deprecation_notice("claude-sonnet-5-5") is None


def test_the_notice_says_whether_the_retirement_date_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    from anthropic import _data

    monkeypatch.setitem(_data.DEPRECATED_MODELS, "claude-old-1", "March 1st, 2020")
    monkeypatch.setitem(_data.DEPRECATED_MODELS, "claude-later-1", "March 3rd, 2999")
    monkeypatch.setitem(_data.DEPRECATED_MODELS, "claude-odd-1", "some day soon")
    assert "was retired on March 1st, 2020;" in (deprecation_notice("claude-old-1") or "")
    assert "and retires on March 3rd, 2999;" in (deprecation_notice("claude-later-1") or "")
    assert "and retires on some day soon;" in (deprecation_notice("claude-odd-1") or "")
