"""Evaluation metrics for language modelling, accumulated batch by batch and summed across processes.

eval_loss is the mean cross-entropy per token in nats; perplexity is exp(eval_loss), the number
of equally likely tokens the model is, on average, choosing between. Both are per token of this
project's tokenizer (per byte with the default byte tokenizer), so compare runs that share one.
With the instruction data they are over the responses' tokens only: the prompts are not scored.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from data import TaskData

MONITOR = "eval_loss"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = False
THROUGHPUT = "tokens_per_s"  # what the training log counts per second


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.numel()


class EvalMetrics:
    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.tokens = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        counted = (targets >= 0).sum()  # a negative target (IGNORE) is a prompt or padding position
        self.loss_sum += loss.double() * counted
        self.tokens += counted

    def all_reduce(self) -> None:
        """Sum the counts of every process (each saw a different shard of the split)."""
        for tensor in (self.loss_sum, self.tokens):
            dist.all_reduce(tensor)

    def compute(self) -> dict[str, float]:
        tokens = int(self.tokens.item())
        loss = self.loss_sum.item() / max(tokens, 1)
        return {"eval_loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": tokens}


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation."""
    return EvalMetrics(device)


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much higher the loss is on held-out text than on training text (a fraction)."""
    return (val["eval_loss"] - train["eval_loss"]) / max(train["eval_loss"], 1e-12)
