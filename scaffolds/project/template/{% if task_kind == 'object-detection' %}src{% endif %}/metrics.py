"""Evaluation metrics for detection: average precision at IoU 0.5 per class, and recall and
precision at the score the server reports boxes from.

A predicted box is a true positive when it overlaps a labelled box of its class by an
intersection over union of at least 0.5 and that box is not already taken by a higher-scoring
prediction; each class's predictions over the whole split, best first, trace a precision-recall
curve, and its area (all points, precision made monotone as in PASCAL VOC 2010 and COCO) is the
class's AP ("ap_person"); map is their mean over the classes with labelled boxes. recall_person
and precision_person count the boxes scoring at least `score_threshold`, what `predict` and the
server return. Names match the task spec's metric names, so `runner.py check` compares them
directly. Under torchrun each process scores its shard; the matches are gathered before the
curves are drawn.
"""

from __future__ import annotations

import re

import torch
import torch.distributed as dist

from data import TaskData, boxes_from_targets
from network import decode

MONITOR = "map"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = True
THROUGHPUT = "samples_per_s"  # what the training log counts per second (frames)
IOU_THRESHOLD = 0.5


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.shape[0]


def metric_name(label: str) -> str:
    """A class name as it appears in metric names: "Fork lift" -> "fork_lift"."""
    return re.sub(r"\W+", "_", label.strip().lower()).strip("_") or "class"


def box_iou(box: tuple, others: list[tuple]) -> list[float]:
    """Intersection over union of one (x0, y0, x1, y1) box with each of `others`."""
    x0, y0, x1, y1 = box
    area = max(x1 - x0, 0) * max(y1 - y0, 0)
    result = []
    for ox0, oy0, ox1, oy1 in others:
        overlap = max(min(x1, ox1) - max(x0, ox0), 0) * max(min(y1, oy1) - max(y0, oy0), 0)
        union = area + max(ox1 - ox0, 0) * max(oy1 - oy0, 0) - overlap
        result.append(overlap / union if union > 0 else 0.0)
    return result


def match_frame(predictions: list[tuple], truths: list[tuple], classes: int) -> list[tuple[int, float, bool]]:
    """(class, score, true positive?) for each prediction of one frame, matched greedily best
    score first to the free labelled box of its class it overlaps most."""
    taken = [False] * len(truths)
    matches = []
    for label, score, *box in sorted(predictions, key=lambda p: -p[1]):
        candidates = [i for i, truth in enumerate(truths) if truth[0] == label and not taken[i]]
        overlaps = box_iou(tuple(box), [truths[i][1:] for i in candidates])
        best = max(range(len(candidates)), key=overlaps.__getitem__, default=None)
        hit = best is not None and overlaps[best] >= IOU_THRESHOLD
        if hit:
            taken[candidates[best]] = True
        matches.append((label, score, hit))
    return matches


def average_precision(matches: list[tuple[float, bool]], positives: int) -> float:
    """The area under the precision-recall curve of one class's (score, hit) pairs."""
    if positives == 0:
        return 0.0
    ordered = sorted(matches, key=lambda m: -m[0])
    hits = torch.tensor([hit for _, hit in ordered], dtype=torch.float64)
    true_positives = hits.cumsum(0)
    precision = true_positives / torch.arange(1, len(ordered) + 1, dtype=torch.float64)
    recall = true_positives / positives
    # Precision made monotone (the best precision at this recall or any higher one), then summed
    # over the steps in recall.
    envelope = precision.flip(0).cummax(0).values.flip(0)
    steps = torch.diff(recall, prepend=torch.zeros(1, dtype=torch.float64))
    return float((envelope * steps).sum()) if len(ordered) else 0.0


class EvalMetrics:
    def __init__(self, labels: list[str], score_threshold: float, device: torch.device):
        self.labels = labels
        self.score_threshold = score_threshold
        self.matches: list[tuple[int, float, bool]] = []
        self.positives = [0] * len(labels)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.frames = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        classes = len(self.labels)
        for predictions, truths in zip(
            decode(outputs), boxes_from_targets(targets.cpu(), classes), strict=True
        ):
            self.matches.extend(match_frame(predictions, truths, classes))
            for truth in truths:
                self.positives[truth[0]] += 1
        self.loss_sum += loss.double() * targets.shape[0]
        self.frames += targets.shape[0]

    def all_reduce(self) -> None:
        """Every process's matches and box counts together (each scored its own shard)."""
        for tensor in (self.loss_sum, self.frames):
            dist.all_reduce(tensor)
        gathered: list = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, (self.matches, self.positives))
        self.matches = [match for matches, _ in gathered for match in matches]
        self.positives = [
            sum(counts) for counts in zip(*(positives for _, positives in gathered), strict=True)
        ]

    def compute(self) -> dict[str, float]:
        frames = int(self.frames.item())
        results: dict[str, float] = {"eval_loss": (self.loss_sum / max(frames, 1)).item()}
        per_class: dict[str, float] = {}
        precisions, recalls = [], []
        for label_id, label in enumerate(self.labels):
            matches = [(score, hit) for label_of, score, hit in self.matches if label_of == label_id]
            positives = self.positives[label_id]
            kept = [hit for score, hit in matches if score >= self.score_threshold]
            name = metric_name(label)
            per_class[f"ap_{name}"] = average_precision(matches, positives)
            per_class[f"recall_{name}"] = sum(kept) / positives if positives else 0.0
            per_class[f"precision_{name}"] = sum(kept) / len(kept) if kept else 0.0
            if positives:
                precisions.append(per_class[f"precision_{name}"])
                recalls.append(per_class[f"recall_{name}"])
        scored = [
            per_class[f"ap_{metric_name(label)}"] for i, label in enumerate(self.labels) if self.positives[i]
        ]
        results["map"] = sum(scored) / len(scored) if scored else 0.0
        results["recall"] = sum(recalls) / len(recalls) if recalls else 0.0
        results["precision"] = sum(precisions) / len(precisions) if precisions else 0.0
        results["worst_class_recall"] = min(recalls, default=0.0)
        results["examples"] = frames
        results["boxes"] = sum(self.positives)
        results["predicted_boxes"] = sum(score >= self.score_threshold for _, score, _ in self.matches)
        return results | per_class


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation of this task's data."""
    return EvalMetrics(data.preprocessor.labels, data.preprocessor.score_threshold, device)


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much better the model does on frames it trained on (mAP@0.5)."""
    return train["map"] - val["map"]
