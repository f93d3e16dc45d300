"""Evaluation metrics for domain adaptation: the language model on both corpora, and a clause
classifier on its features.

The validation split holds held-out domain texts and held-out general paragraphs; each is scored
on its masked tokens (the same tokens masked at every evaluation):
  eval_loss, perplexity     the domain's: mean cross-entropy per masked token, and exp of it
                            (eval_loss picks the best checkpoint)
  masked_accuracy           the domain's masked tokens the model restores exactly
  general_perplexity, general_accuracy   the same on the general paragraphs
The clause classifier: over the labelled domain texts, each text's label is predicted by a linear
probe fitted on the frozen features of the others (probe.py, 5 folds): `accuracy` and `macro_f1`.
It reads what the encoder's features make plain, with no fine-tuning that could hide a weak one.

Every run also measures the encoder it started from before its first step (the original encoder,
at step 0), and reports against it: perplexity_before, general_accuracy_before, macro_f1_before,
and accuracy_drop, how much of the general benchmark's masked-token accuracy adaptation lost.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from data import DOMAIN, GENERAL, UNLABELLED, TaskData, unpack_targets
from probe import probe_scores

MONITOR = "eval_loss"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = False
THROUGHPUT = "samples_per_s"  # what the training log counts per second (texts)
CORPORA = {DOMAIN: "", GENERAL: "general_"}  # metric-name prefix of each corpus


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.shape[0]


class EvalMetrics:
    def __init__(self, labels: list[str], device: torch.device):
        self.labels = labels
        # Per corpus: summed loss, tokens restored, tokens masked, texts.
        self.sums = torch.zeros(len(CORPORA), 4, dtype=torch.float64, device=device)
        self.features: list[torch.Tensor] = []  # of the labelled domain texts, on the CPU
        self.classes: list[torch.Tensor] = []

    @torch.no_grad()
    def update(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor, loss: torch.Tensor) -> None:
        _, labels, corpus = unpack_targets(targets)
        counts = torch.stack(
            [outputs["loss_sum"], outputs["hits"], outputs["masked"], torch.ones_like(outputs["hits"])]
        )
        self.sums.index_add_(0, corpus, counts.T.double())
        known = (labels != UNLABELLED) & (corpus == DOMAIN)
        if self.labels and known.any():
            self.features.append(outputs["features"][known].float().cpu())
            self.classes.append(labels[known].cpu())

    def all_reduce(self) -> None:
        """Sum every process's counts, and give each one every process's labelled features."""
        dist.all_reduce(self.sums)
        gathered: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = [([], [])] * dist.get_world_size()
        dist.all_gather_object(gathered, (self.features, self.classes))
        self.features = [part for features, _ in gathered for part in features]
        self.classes = [part for _, classes in gathered for part in classes]

    def compute(self) -> dict[str, float]:
        results: dict[str, float] = {}
        for corpus, prefix in CORPORA.items():
            loss_sum, hits, masked, texts = self.sums[corpus].tolist()
            if not texts:
                continue
            loss = loss_sum / max(masked, 1)
            results |= {
                f"{prefix}eval_loss": loss,
                f"{prefix}perplexity": math.exp(min(loss, 50.0)),
                f"{prefix}masked_accuracy" if corpus == DOMAIN else "general_accuracy": hits / max(masked, 1),
            }
        results["examples"] = int(self.sums[DOMAIN, 3].item())
        return results | self.clause_scores()

    def clause_scores(self) -> dict[str, float]:
        if not self.classes:
            return {}
        features, classes = torch.cat(self.features), torch.cat(self.classes)
        if len(classes.unique()) < 2 or not features.isfinite().all():  # nothing to tell apart, or to fit
            return {}
        return probe_scores(features, classes, len(self.labels))[0]


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation of this task's data."""
    return EvalMetrics(data.preprocessor.labels, device)


def compare_to_start(start: dict[str, float], now: dict[str, float]) -> dict[str, float]:
    """`now` against the scores of the encoder the run started from (the trainer measures them
    before the first step and passes them here)."""
    compared = {
        f"{name}_before": start[name]
        for name in ("perplexity", "general_perplexity", "general_accuracy", "macro_f1")
        if name in start
    }
    if "general_accuracy" in start and "general_accuracy" in now:
        compared["accuracy_drop"] = start["general_accuracy"] - now["general_accuracy"]
    if "macro_f1" in start and "macro_f1" in now:
        compared["macro_f1_gain"] = now["macro_f1"] - start["macro_f1"]
    return compared


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much better the model restores the domain texts it trained on (cross-entropy)."""
    return val["eval_loss"] - train["eval_loss"]
