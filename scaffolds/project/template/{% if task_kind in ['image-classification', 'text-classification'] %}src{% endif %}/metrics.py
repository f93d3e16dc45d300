"""Evaluation metrics for classification, accumulated batch by batch and summed across processes.

A confusion matrix is enough for all of them: accuracy, macro precision/recall/F1 (each class
counts the same however rare) and those of the worst class, how many classes the predictions use,
plus top-5 accuracy and the mean loss tracked alongside.
Names match the task spec's metric names, so `runner.py check` can compare them directly.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from data import TaskData

MONITOR = "accuracy"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = True
THROUGHPUT = "samples_per_s"  # what the training log counts per second


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.shape[0]


class EvalMetrics:
    def __init__(self, num_classes: int, device: torch.device):
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.top5_correct = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        predictions = logits.argmax(dim=-1)
        pairs = targets * self.num_classes + predictions
        self.confusion += torch.bincount(pairs, minlength=self.num_classes**2).view_as(self.confusion)
        self.loss_sum += loss.double() * targets.shape[0]
        top5 = logits.topk(min(5, self.num_classes), dim=-1).indices
        self.top5_correct += (top5 == targets[:, None]).any(dim=-1).sum()

    def all_reduce(self) -> None:
        """Sum the counts of every process (each saw a different shard of the split)."""
        for tensor in (self.confusion, self.loss_sum, self.top5_correct):
            dist.all_reduce(tensor)

    def compute(self) -> dict[str, float]:
        confusion = self.confusion.double()
        examples = int(confusion.sum().item())
        total = max(examples, 1)
        true_positives = confusion.diag()
        precision = true_positives / confusion.sum(dim=0).clamp(min=1)  # columns: predicted
        recall = true_positives / confusion.sum(dim=1).clamp(min=1)  # rows: actual
        f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
        results = {
            "eval_loss": (self.loss_sum / total).item(),
            "accuracy": (true_positives.sum() / total).item(),
            "macro_f1": f1.mean().item(),
            "precision": precision.mean().item(),
            "recall": recall.mean().item(),
            # The class served worst, for gates such as "precision below 80% on any class".
            "worst_class_precision": precision.min().item(),
            "worst_class_recall": recall.min().item(),
            "worst_class_f1": f1.min().item(),
            "examples": examples,
            # A model stuck on the majority class predicts one class, however good its accuracy.
            "predicted_classes": int((confusion.sum(dim=0) > 0).sum().item()),
        }
        if self.num_classes > 5:
            results["top5_accuracy"] = (self.top5_correct / total).item()
        return results


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation of this task's data."""
    return EvalMetrics(len(data.preprocessor.labels), device)


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much better the model does on examples it trained on (accuracy, as a fraction)."""
    return train["accuracy"] - val["accuracy"]
