"""The evaluation metrics: each corpus scored apart, the clause probe over the labelled domain
texts only, and every run compared with the encoder it started from."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import read_records
from data import DOMAIN, GENERAL, IGNORED, UNLABELLED
from metrics import EvalMetrics, compare_to_start, generalization_gap
from test_probe import clusters


def packed(labels: list[int], corpus: list[int]) -> torch.Tensor:
    token_targets = torch.full((len(labels), 4), IGNORED)
    return torch.cat([token_targets, torch.tensor([labels, corpus]).T], dim=1)


def test_each_corpus_is_scored_apart_and_the_probe_reads_labelled_domain_texts() -> None:
    features, labels = clusters(20, 2, spread=0.3)
    metrics = EvalMetrics(["payment", "termination"], torch.device("cpu"))
    outputs = {
        "loss_sum": torch.full((40,), 2.0),  # 2 per text over 4 masked tokens: 0.5 a token
        "hits": torch.full((40,), 3.0),
        "masked": torch.full((40,), 4.0),
        "features": features,
    }
    metrics.update(outputs, packed(labels.tolist(), [DOMAIN] * 40), torch.tensor(0.5))
    general = {
        "loss_sum": torch.full((10,), 4.0),
        "hits": torch.ones(10),
        "masked": torch.full((10,), 2.0),
        "features": torch.randn(10, 16),
    }
    metrics.update(general, packed([UNLABELLED] * 10, [GENERAL] * 10), torch.tensor(2.0))
    results = metrics.compute()
    assert results["eval_loss"] == 0.5 and results["perplexity"] == pytest.approx(math.exp(0.5))
    assert results["masked_accuracy"] == 0.75
    assert results["general_eval_loss"] == 2.0 and results["general_accuracy"] == 0.5
    assert results["examples"] == 40 and results["labelled_examples"] == 40
    assert results["accuracy"] == 1.0 and results["macro_f1"] == 1.0


def test_unlabelled_domain_texts_give_no_clause_scores() -> None:
    metrics = EvalMetrics([], torch.device("cpu"))
    outputs = {
        "loss_sum": torch.ones(3),
        "hits": torch.ones(3),
        "masked": torch.ones(3),
        "features": torch.randn(3, 8),
    }
    metrics.update(outputs, packed([UNLABELLED] * 3, [DOMAIN] * 3), torch.tensor(1.0))
    assert set(metrics.compute()) == {"eval_loss", "perplexity", "masked_accuracy", "examples"}


def test_a_run_is_compared_with_where_it_started() -> None:
    start = {"perplexity": 40.0, "general_perplexity": 9.0, "general_accuracy": 0.50, "macro_f1": 0.80}
    now = {"perplexity": 5.0, "general_perplexity": 9.5, "general_accuracy": 0.47, "macro_f1": 0.90}
    compared = compare_to_start(start, now)
    assert compared["perplexity_before"] == 40.0 and compared["general_accuracy_before"] == 0.50
    assert compared["accuracy_drop"] == pytest.approx(0.03) and compared["macro_f1_gain"] == pytest.approx(
        0.10
    )


def test_the_gap_is_how_much_better_training_texts_are_restored() -> None:
    assert generalization_gap({"eval_loss": 1.0}, {"eval_loss": 1.2}) == pytest.approx(0.2)


def test_a_run_measures_its_starting_encoder_first_and_reports_against_it(trained_run: Path) -> None:
    records = read_records(trained_run)
    evaluations = [r for r in records if r["kind"] == "eval"]
    assert evaluations[0]["step"] == 0 and not evaluations[0]["best"]
    start, final = evaluations[0], records[-1]
    assert final["kind"] == "final"
    assert final["perplexity_before"] == start["perplexity"]
    assert final["accuracy_drop"] == pytest.approx(start["general_accuracy"] - final["general_accuracy"])
    assert final["perplexity"] < start["perplexity"]  # adaptation learned something of the domain
