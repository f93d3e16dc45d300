"""The linear probe and the evaluation metrics: a probe reads what is linearly in the features,
cross-validation never scores an image with a probe that saw it, and the reconstruction loss is
averaged over images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from data import UNLABELLED
from metrics import EvalMetrics, generalization_gap
from probe import LinearProbe, cross_validated_predictions, fit_probe


def clusters(per_class: int, classes: int, spread: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features scattered around one centre per class, in 16 dimensions."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, 16, generator=generator) * 3
    labels = torch.arange(classes).repeat_interleave(per_class)
    return centres[labels] + spread * torch.randn(len(labels), 16, generator=generator), labels


def test_a_probe_separates_separable_features_and_reads_noise_as_chance() -> None:
    features, labels = clusters(40, 4, spread=0.5)
    probe = fit_probe(features, labels, 4)
    assert (probe.logits(features).argmax(dim=-1) == labels).float().mean() == 1.0
    noise = torch.randn(400, 16, generator=torch.Generator().manual_seed(1))
    random_labels = torch.randint(0, 4, (400,), generator=torch.Generator().manual_seed(2))
    held_out = cross_validated_predictions(noise, random_labels, 4)
    assert 0.1 < (held_out == random_labels).float().mean() < 0.4  # chance is 0.25


def test_cross_validation_never_scores_an_example_with_a_probe_that_saw_it() -> None:
    """In 80 dimensions a probe fitted on 40 random points learns their random labels by heart;
    held out, each point's label can only be guessed."""
    generator = torch.Generator().manual_seed(3)
    features, labels = (
        torch.randn(40, 80, generator=generator),
        torch.randint(0, 2, (40,), generator=generator),
    )
    memorised = fit_probe(features, labels, 2).logits(features).argmax(dim=-1)
    assert (memorised == labels).float().mean() == 1.0
    held_out = cross_validated_predictions(features, labels, 2)
    assert (held_out == labels).float().mean() < 0.8
    assert torch.equal(held_out, cross_validated_predictions(features, labels, 2))  # seeded folds


def test_a_saved_probe_loads_only_for_the_step_it_was_fitted_at(tmp_path: Path) -> None:
    features, labels = clusters(10, 2, spread=0.5)
    probe = fit_probe(features, labels, 2)
    probe.save(tmp_path / "probe.pt", step=40)
    loaded = LinearProbe.load(tmp_path / "probe.pt", step=40)
    assert loaded is not None and torch.equal(loaded.logits(features), probe.logits(features))
    assert LinearProbe.load(tmp_path / "probe.pt", step=50) is None
    assert LinearProbe.load(tmp_path / "missing.pt", step=40) is None


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
