"""The linear probe: how much of what an input shows its frozen features make linearly readable.

A probe is a multinomial logistic regression over the features, standardised first (MAE's probe
puts a batch norm without learned scale there: the same thing, fitted once), with a little L2
weight decay, fitted to convergence by L-BFGS over all its examples at once. Fitting 5 classes on
a thousand features takes well under a second on a CPU, so every evaluation fits probes afresh.

`cross_validated_predictions` scores a set of labelled images honestly without a second labelled
split: the images are dealt into folds, and each fold is predicted by a probe fitted on the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

FOLDS = 5
L2 = 1e-3  # weight decay on the probe's weights (standardised features: one scale for all)
MAX_ITERATIONS = 200


@dataclass
class LinearProbe:
    mean: torch.Tensor  # [features]
    std: torch.Tensor  # [features]
    weight: torch.Tensor  # [features, classes]
    bias: torch.Tensor  # [classes]

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        features = features.float().to(self.weight.device)
        return ((features - self.mean) / self.std) @ self.weight + self.bias

    def save(self, path: Path, step: int) -> None:
        torch.save({"step": step, **vars(self)}, path)

    @classmethod
    def load(cls, path: Path, step: int) -> LinearProbe | None:
        """The probe saved at `path` if it was fitted to the model of `step`, else None."""
        if not path.exists():
            return None
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.pop("step", None) != step:
            return None
        return cls(**saved)


def fit_probe(features: torch.Tensor, labels: torch.Tensor, classes: int) -> LinearProbe:
    """A probe fitted to `features` [N, D] and `labels` [N] (class ids below `classes`)."""
    features = features.float().cpu()
    labels = labels.cpu()
    mean = features.mean(dim=0)
    std = features.std(dim=0).clamp(min=1e-6) if len(features) > 1 else torch.ones_like(mean)
    standardised = (features - mean) / std
    weight = torch.zeros(features.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=MAX_ITERATIONS, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(standardised @ weight + bias, labels) + L2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():  # evaluation runs under no_grad; the fit needs gradients
        optimizer.step(objective)
    return LinearProbe(mean=mean, std=std, weight=weight.detach(), bias=bias.detach())


def cross_validated_predictions(
    features: torch.Tensor, labels: torch.Tensor, classes: int, seed: int = 0
) -> torch.Tensor:
    """Each example's predicted class from a probe fitted without it (FOLDS folds, dealt in a
    seeded order). Needs at least two examples."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    predictions = torch.empty_like(labels)
    folds = min(FOLDS, len(labels))
    for fold in range(folds):
        held_out = order[fold::folds]
        kept = torch.ones(len(labels), dtype=torch.bool)
        kept[held_out] = False
        probe = fit_probe(features[kept], labels[kept], classes)
        predictions[held_out] = probe.logits(features[held_out]).argmax(dim=-1).cpu()
    return predictions


def probe_scores(features: torch.Tensor, labels: torch.Tensor, classes: int) -> tuple[dict[str, float], list]:
    """How well cross-validated probes name `labels` from `features`: top-1 accuracy, macro F1 over
    the classes present, how many examples and how many classes were predicted; and per class the
    share of its examples named right (None for a class with no example)."""
    predicted = cross_validated_predictions(features, labels, classes)
    pairs = labels * classes + predicted
    confusion = torch.bincount(pairs, minlength=classes * classes).view(classes, classes).double()
    hits, actual, chosen = confusion.diagonal(), confusion.sum(dim=1), confusion.sum(dim=0)
    seen = actual > 0
    recall, precision = hits / actual.clamp(min=1), hits / chosen.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    scores = {
        "accuracy": (hits.sum() / len(labels)).item(),
        "macro_f1": f1[seen].mean().item(),
        "labelled_examples": len(labels),
        "predicted_classes": int((chosen > 0).sum().item()),
    }
    per_class = recall.where(seen, torch.nan).tolist()
    return scores, [None if math.isnan(value) else value for value in per_class]


def load_or_fit(path: Path, step: int, fit: Callable[[], LinearProbe | None]) -> LinearProbe | None:
    """The probe saved at `path` for the model of `step`, else `fit()`'s, saved there for next time."""
    probe = LinearProbe.load(path, step)
    if probe is None:
        probe = fit()
        if probe is not None:
            probe.save(path, step)
    return probe
