"""Evaluation metrics for chart question answering, counted batch by batch and summed across
processes.

accuracy        the share of questions answered right, numbers with ChartQA's relaxed match: a
                numeric answer counts when it is within 5% of the true one (|answer - truth| <=
                0.05 |truth|; a true 0 must be met exactly), any other answer when it is the same
                answer. A question whose true answer is no answer class the run knows counts wrong.
exact_match     the share answered with exactly the true answer
accuracy_<type> accuracy on each type of chart (accuracy_bar, accuracy_stacked_bar, accuracy_line):
                the per-type report the spec asks for, and its gate on stacked bars
accuracy_<kind> accuracy on each kind of question (value, extreme, compare, count) of the
                built-in charts: where a reader is weak

Names match the task spec's metric names, so `runner.py check` can compare them directly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from data import QUESTION_KINDS, as_number

if TYPE_CHECKING:
    from data import TaskData

MONITOR = "accuracy"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = True
THROUGHPUT = "samples_per_s"  # what the training log counts per second (questions)
TOLERANCE = 0.05  # relative: ChartQA's relaxed accuracy


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.shape[0]


def metric_name(group: str) -> str:
    """ "stacked bar" -> "accuracy_stacked_bar"."""
    return "accuracy_" + "_".join(group.lower().split())


class EvalMetrics:
    def __init__(self, answers: list[str], chart_types: list[str], device: torch.device):
        self.chart_types = chart_types
        numbers = [as_number(answer) for answer in answers]
        self.values = torch.tensor(
            [math.nan if n is None else n for n in numbers], dtype=torch.float64, device=device
        )
        self.right_by_type = torch.zeros(len(chart_types), dtype=torch.long, device=device)
        self.total_by_type = torch.zeros(len(chart_types), dtype=torch.long, device=device)
        self.right_by_kind = torch.zeros(len(QUESTION_KINDS), dtype=torch.long, device=device)
        self.total_by_kind = torch.zeros(len(QUESTION_KINDS), dtype=torch.long, device=device)
        # [relaxed right, exact right, questions, questions whose answer is an answer class]
        self.counts = torch.zeros(4, dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)

    def correct(self, predicted: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Relaxed and exact correctness of predicted answer ids against true ones (-1: unknown)."""
        known = truth >= 0
        exact = known & (predicted == truth)
        guess, true = self.values[predicted], self.values[truth.clamp(min=0)]
        close = (guess - true).abs() <= TOLERANCE * true.abs()  # False where either is not a number
        return exact | (known & close), exact

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        relaxed, exact = self.correct(logits.argmax(dim=-1), targets[:, 0])
        known = (targets[:, 0] >= 0).sum()
        self.counts += torch.stack([relaxed.sum(), exact.sum(), known.new_tensor(len(relaxed)), known])
        # The model's loss is the mean over the questions whose answer it knows: weigh it by them.
        self.loss_sum += loss.double() * known
        for right, total, group in (
            (self.right_by_type, self.total_by_type, targets[:, 1]),
            (self.right_by_kind, self.total_by_kind, targets[:, 2]),
        ):
            seen = group >= 0  # a chart type the run does not know is left out of the report
            right += torch.bincount(group[seen & relaxed], minlength=len(right))
            total += torch.bincount(group[seen], minlength=len(total))

    def all_reduce(self) -> None:
        """Sum the counts of every process (each saw a different shard of the split)."""
        for tensor in (
            self.counts,
            self.loss_sum,
            self.right_by_type,
            self.total_by_type,
            self.right_by_kind,
            self.total_by_kind,
        ):
            dist.all_reduce(tensor)

    def compute(self) -> dict[str, float]:
        relaxed, exact, questions, known = (int(n) for n in self.counts.tolist())
        total = max(questions, 1)
        results = {
            "eval_loss": (self.loss_sum / max(known, 1)).item(),
            "accuracy": relaxed / total,
            "exact_match": exact / total,
            "examples": questions,
        }
        groups = [
            *zip(self.chart_types, self.right_by_type.tolist(), self.total_by_type.tolist(), strict=True),
            *zip(QUESTION_KINDS, self.right_by_kind.tolist(), self.total_by_kind.tolist(), strict=True),
        ]
        for group, right, asked in groups:
            if asked:  # a group the split does not have gets no figure rather than a made-up 0
                results[metric_name(group)] = right / asked
        return results


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation of this task's data."""
    return EvalMetrics(data.preprocessor.answers, data.preprocessor.chart_types, device)


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much better the model does on questions about charts it trained on (accuracy)."""
    return train["accuracy"] - val["accuracy"]
