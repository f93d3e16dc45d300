"""Evaluation metrics for tagging, counted batch by batch and summed across processes.

An entity is a span of words: a B-X tag and the I-X tags that follow it (an I-X after O or after
another type opens a span too, as seqeval reads BIO by default). A predicted entity counts as
correct only when its type, first and last word all match a true one. From those counts: entity
precision, recall and F1 over all types (micro), the same per type ("f1_drug") and for the type
served worst ("worst_class_f1"), token accuracy over the words, and how many distinct tags the
predictions use (1: the model says O to everything).
Names match the task spec's metric names, so `runner.py check` can compare them directly.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from data import IGNORE, TaskData

MONITOR = "f1"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = True
THROUGHPUT = "samples_per_s"  # what the training log counts per second


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.shape[0]


def entity_types(labels: list[str]) -> list[str]:
    """The entity types of B-X/I-X tag names, in order of first appearance."""
    return list(dict.fromkeys(name[2:] for name in labels if name[:2] in ("B-", "I-")))


def spans(tags: list[str]) -> set[tuple[str, int, int]]:
    """The (type, first word, last word) of each entity in one note's tags."""
    found, current = set(), None
    for position, tag in enumerate([*tags, "O"]):
        edge, kind = tag[:2], tag[2:]
        continues = current is not None and edge == "I-" and kind == current[0]
        if current is not None and not continues:
            found.add((current[0], current[1], position - 1))
            current = None
        if edge in ("B-", "I-") and not continues:
            current = (kind, position)
    return found


class EvalMetrics:
    def __init__(self, labels: list[str], device: torch.device):
        self.labels = labels
        self.types = entity_types(labels)
        # Per type: entities both predicted and true, predicted, true.
        self.entities = torch.zeros(len(self.types), 3, dtype=torch.long, device=device)
        self.words = torch.zeros(2, dtype=torch.long, device=device)  # tagged right, tagged
        self.tags_predicted = torch.zeros(len(labels), dtype=torch.long, device=device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.notes = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        targets = targets[:, : logits.shape[1]]  # the model cropped columns of padding
        predictions = logits.argmax(dim=-1)
        scored = targets != IGNORE
        self.words += torch.stack([(predictions == targets)[scored].sum(), scored.sum()])
        self.tags_predicted += torch.bincount(predictions[scored], minlength=len(self.labels))
        self.loss_sum += loss.double() * targets.shape[0]
        self.notes += targets.shape[0]
        counts = torch.zeros_like(self.entities, device="cpu")
        index = {kind: i for i, kind in enumerate(self.types)}
        for truth, guess, mask in zip(targets.tolist(), predictions.tolist(), scored.tolist(), strict=True):
            true = spans([self.labels[t] for t, keep in zip(truth, mask, strict=True) if keep])
            predicted = spans([self.labels[p] for p, keep in zip(guess, mask, strict=True) if keep])
            for column, found in enumerate((true & predicted, predicted, true)):
                for kind, _, _ in found:
                    counts[index[kind], column] += 1
        self.entities += counts.to(self.entities.device)

    def all_reduce(self) -> None:
        """Sum the counts of every process (each saw a different shard of the split)."""
        for tensor in (self.entities, self.words, self.tags_predicted, self.loss_sum, self.notes):
            dist.all_reduce(tensor)

    def compute(self) -> dict[str, float]:
        notes = int(self.notes.item())
        results: dict[str, float] = {"eval_loss": (self.loss_sum / max(notes, 1)).item()}
        totals = self.entities.sum(dim=0).tolist()
        results |= scores(*totals)
        results["accuracy"] = self.words[0].item() / max(self.words[1].item(), 1)
        results["examples"] = notes
        results["entities"] = totals[2]
        results["predicted_classes"] = int((self.tags_predicted > 0).sum().item())
        per_type = [scores(*row) for row in self.entities.tolist()]
        for name in ("precision", "recall", "f1"):  # the type served worst
            results[f"worst_class_{name}"] = min((s[name] for s in per_type), default=0.0)
        for kind, values in zip(self.types, per_type, strict=True):
            results |= {f"{name}_{kind.lower()}": value for name, value in values.items()}
        return results


def scores(correct: int, predicted: int, true: int) -> dict[str, float]:
    """Precision, recall and F1 from counts of entities (0 where nothing was predicted or true)."""
    precision = correct / predicted if predicted else 0.0
    recall = correct / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation of this task's data."""
    return EvalMetrics(data.preprocessor.labels, device)


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much better the model does on notes it trained on (entity F1)."""
    return train["f1"] - val["f1"]
