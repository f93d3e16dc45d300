"""Evaluation metrics for segmentation, from a confusion matrix of pixels summed across processes.

Per class, intersection over union: pixels both predicted and labelled as the class, over pixels
predicted or labelled as it ("iou_water"); their mean over the classes present in the labels or
the predictions (miou), and the worst of them (worst_class_iou); pixel accuracy; and how many
classes the predictions use (1: the model paints everything one class). Unlabelled pixels
(data.IGNORE) count nowhere. Names match the task spec's metric names, so `runner.py check` can
compare them directly.
"""

from __future__ import annotations

import re

import torch
import torch.distributed as dist

from data import IGNORE, TaskData

MONITOR = "miou"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = True
THROUGHPUT = "samples_per_s"  # what the training log counts per second (tiles)


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.shape[0]


def metric_name(label: str) -> str:
    """A class name as it appears in metric names: "Low vegetation" -> "low_vegetation"."""
    return re.sub(r"\W+", "_", label.strip().lower()).strip("_") or "class"


class EvalMetrics:
    def __init__(self, labels: list[str], device: torch.device):
        self.labels = labels
        # confusion[true, predicted]: pixels of each pair of classes.
        self.confusion = torch.zeros(len(labels), len(labels), dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.tiles = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        classes = len(self.labels)
        predictions = logits.argmax(dim=1)
        labelled = targets != IGNORE
        pairs = targets[labelled] * classes + predictions[labelled]
        self.confusion += torch.bincount(pairs, minlength=classes * classes).view(classes, classes)
        self.loss_sum += loss.double() * targets.shape[0]
        self.tiles += targets.shape[0]

    def all_reduce(self) -> None:
        """Sum the counts of every process (each saw a different shard of the split)."""
        for tensor in (self.confusion, self.loss_sum, self.tiles):
            dist.all_reduce(tensor)

    def compute(self) -> dict[str, float]:
        confusion = self.confusion.double().cpu()
        tiles = int(self.tiles.item())
        hits, labelled, predicted = confusion.diagonal(), confusion.sum(dim=1), confusion.sum(dim=0)
        union = labelled + predicted - hits
        present = union > 0
        iou = torch.where(present, hits / union.clamp(min=1), torch.zeros_like(hits))
        results: dict[str, float] = {
            "eval_loss": (self.loss_sum / max(tiles, 1)).item(),
            "miou": iou[present].mean().item() if present.any() else 0.0,
            "worst_class_iou": iou[present].min().item() if present.any() else 0.0,
            "accuracy": (hits.sum() / labelled.sum().clamp(min=1)).item(),
            "examples": tiles,
            "predicted_classes": int((predicted > 0).sum().item()),
        }
        for label, value in zip(self.labels, iou.tolist(), strict=True):
            results[f"iou_{metric_name(label)}"] = value
        return results


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation of this task's data."""
    return EvalMetrics(data.preprocessor.labels, device)


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much better the model does on scenes it trained on (mIoU)."""
    return train["miou"] - val["miou"]
