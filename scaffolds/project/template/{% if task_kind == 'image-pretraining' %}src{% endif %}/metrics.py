"""Evaluation metrics for pre-training: the reconstruction, and a linear probe of the features.

eval_loss is the reconstruction's: the mean squared error over the hidden patches of the evaluated
images, the same patches hidden at every evaluation (it picks the best checkpoint). The linear
probe says what the features are worth: over the evaluated images that have labels (on the
validation split: the labelled subset held out from pre-training), each image's class is predicted
by a probe fitted on the frozen features of the others (probe.py, 5 folds). Reported: top-1
accuracy (the spec's "linear-probe top-1 accuracy"), macro F1, and per class the share of its
images the probe names right ("accuracy_circle"). A source without labels has the reconstruction
alone.
"""

from __future__ import annotations

import re

import torch
import torch.distributed as dist

from data import UNLABELLED, TaskData
from probe import probe_scores

MONITOR = "eval_loss"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = False
THROUGHPUT = "samples_per_s"  # what the training log counts per second (images)


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.shape[0]


def metric_name(label: str) -> str:
    """A class name as it appears in metric names: "Dark circle" -> "dark_circle"."""
    return re.sub(r"\W+", "_", label.strip().lower()).strip("_") or "class"


class EvalMetrics:
    def __init__(self, labels: list[str], device: torch.device):
        self.labels = labels
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.images = torch.zeros((), dtype=torch.long, device=device)
        self.features: list[torch.Tensor] = []  # of the labelled images, on the CPU
        self.classes: list[torch.Tensor] = []

    @torch.no_grad()
    def update(self, features: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        self.loss_sum += loss.double() * targets.shape[0]
        self.images += targets.shape[0]
        known = targets != UNLABELLED
        if self.labels and known.any():
            self.features.append(features[known].float().cpu())
            self.classes.append(targets[known].cpu())

    def all_reduce(self) -> None:
        """Sum the counts of every process, and give each one every process's labelled features
        (each saw a different shard of the split; the probe needs them all)."""
        for tensor in (self.loss_sum, self.images):
            dist.all_reduce(tensor)
        gathered: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = [([], [])] * dist.get_world_size()
        dist.all_gather_object(gathered, (self.features, self.classes))
        self.features = [part for features, _ in gathered for part in features]
        self.classes = [part for _, classes in gathered for part in classes]

    def compute(self) -> dict[str, float]:
        images = int(self.images.item())
        results: dict[str, float] = {"eval_loss": (self.loss_sum / max(images, 1)).item(), "examples": images}
        if not self.classes:
            return results
        features, classes = torch.cat(self.features), torch.cat(self.classes)
        if len(classes) < 2 or len(classes.unique()) < 2:  # nothing to tell apart
            return results
        scores, recall = probe_scores(features, classes, len(self.labels))
        results |= scores
        for label, value in zip(self.labels, recall, strict=True):
            if value is not None:
                results[f"accuracy_{metric_name(label)}"] = value
        return results


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation of this task's data."""
    return EvalMetrics(data.preprocessor.labels, device)


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much better the model restores images it trained on (reconstruction loss)."""
    return val["eval_loss"] - train["eval_loss"]
