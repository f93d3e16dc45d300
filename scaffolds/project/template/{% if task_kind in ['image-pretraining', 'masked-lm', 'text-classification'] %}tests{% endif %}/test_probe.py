"""The linear probe: it reads what is linearly in the features, cross-validation never scores an
example with a probe that saw it, and a saved probe is used only for the model it was fitted to."""

from __future__ import annotations

from pathlib import Path

import torch

from probe import LinearProbe, cross_validated_predictions, fit_probe, load_or_fit, probe_scores


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


def test_probe_scores_count_each_class_and_leave_out_classes_with_no_example() -> None:
    features, labels = clusters(20, 3, spread=0.3)
    scores, recall = probe_scores(features, labels, classes=4)  # class 3 has no example
    assert scores == {"accuracy": 1.0, "macro_f1": 1.0, "labelled_examples": 60, "predicted_classes": 3}
    assert recall == [1.0, 1.0, 1.0, None]


def test_a_probe_is_fitted_once_then_loaded_for_the_same_step(tmp_path: Path) -> None:
    features, labels = clusters(10, 2, spread=0.5)
    fits = []

    def fit() -> LinearProbe:
        fits.append(1)
        return fit_probe(features, labels, 2)

    first = load_or_fit(tmp_path / "probe.pt", 40, fit)
    again = load_or_fit(tmp_path / "probe.pt", 40, fit)
    assert len(fits) == 1 and first is not None and again is not None
    assert torch.equal(first.weight, again.weight)
    load_or_fit(tmp_path / "probe.pt", 50, fit)  # another step's model: fitted afresh
    assert len(fits) == 2
    assert load_or_fit(tmp_path / "none.pt", 40, lambda: None) is None and not (tmp_path / "none.pt").exists()
