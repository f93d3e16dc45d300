"""The evaluation metrics: the reconstruction loss is averaged over images, and the probe reads the
labelled ones (the probe itself: test_probe.py)."""

from __future__ import annotations

import pytest
import torch

from data import UNLABELLED
from metrics import EvalMetrics, generalization_gap
from test_probe import clusters


def test_metrics_average_the_loss_and_probe_the_labelled_images() -> None:
    features, labels = clusters(20, 2, spread=0.3)
    metrics = EvalMetrics(["round", "square"], torch.device("cpu"))
    metrics.update(features[:20], labels[:20], torch.tensor(0.5))
    metrics.update(features[20:], labels[20:], torch.tensor(0.25))
    unknown = torch.full((10,), UNLABELLED)
    metrics.update(torch.randn(10, 16), unknown, torch.tensor(1.0))
    results = metrics.compute()
    assert results["eval_loss"] == (20 * 0.5 + 20 * 0.25 + 10 * 1.0) / 50 and results["examples"] == 50
    assert results["labelled_examples"] == 40 and results["accuracy"] == 1.0
    assert results["accuracy_round"] == results["accuracy_square"] == 1.0 and results["macro_f1"] == 1.0


def test_without_labels_only_the_reconstruction_is_reported() -> None:
    metrics = EvalMetrics([], torch.device("cpu"))
    metrics.update(torch.randn(4, 16), torch.full((4,), UNLABELLED), torch.tensor(0.3))
    assert set(metrics.compute()) == {"eval_loss", "examples"}


def test_the_gap_is_how_much_better_training_images_are_restored() -> None:
    assert generalization_gap({"eval_loss": 0.10}, {"eval_loss": 0.12}) == pytest.approx(0.02)
