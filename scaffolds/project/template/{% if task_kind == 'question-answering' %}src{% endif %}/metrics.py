"""Question answering metrics, SQuAD 2.0's way, over whole questions rather than windows.

Each window proposes its best span (the highest start + end logit over passage tokens, the end
not before the start and at most MAX_ANSWER_TOKENS after it) and a no-answer score (the logits
of position 0). A question takes the best span of all its windows, and answers with it unless
the lowest no-answer score of its windows is higher (the answer is then "", an abstention).
Scores, against the answer's passage tokens:
  exact_match            answered with exactly the answer's tokens, or abstained where there is none
  f1                     token overlap of the answer given and the true one (1 for a right
                         abstention, 0 for an answer where there is none or the reverse)
  has_answer_*           the same over the questions that have an answer
  no_answer_accuracy     the share of unanswerable questions the model abstained on
  abstentions            the share of all questions it abstained on
Spans are compared in the passage's word pieces, so no text is re-tokenized: a span right in
pieces is right in words. Names match the task spec's metric names, so `runner.py check` can
compare them directly.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist

from data import CONTEXT_START, GOLD_END, GOLD_START, LENGTH, OFFSET, QUESTION, TaskData

MONITOR = "f1"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = True
THROUGHPUT = "samples_per_s"  # what the training log counts per second (windows)
MAX_ANSWER_TOKENS = 30


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.shape[0]


def best_spans(
    logits: torch.Tensor, context_starts: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each window of [windows, tokens, 2] logits: the best span's score, its first and last
    position in the window, and the window's no-answer score."""
    logits = logits.float()
    starts, ends = logits[..., 0], logits[..., 1]
    positions = torch.arange(logits.shape[1], device=logits.device)
    in_passage = (positions >= context_starts[:, None]) & (positions < (context_starts + lengths)[:, None])
    scores = starts[:, :, None] + ends[:, None, :]  # [window, start, end]
    span_length = positions[None, :] - positions[:, None]
    allowed = (span_length >= 0) & (span_length < MAX_ANSWER_TOKENS)
    allowed = allowed[None] & in_passage[:, :, None] & in_passage[:, None, :]
    scores = scores.masked_fill(~allowed, -torch.inf).flatten(1)
    best, flat = scores.max(dim=1)
    return best, flat // logits.shape[1], flat % logits.shape[1], starts[:, 0] + ends[:, 0]


def token_f1(predicted: tuple[int, int], true: tuple[int, int]) -> float:
    """Overlap of two spans of tokens (first, last; (-1, -1): no answer) as SQuAD's F1."""
    if predicted[0] < 0 or true[0] < 0:
        return float(predicted[0] < 0 and true[0] < 0)
    overlap = min(predicted[1], true[1]) - max(predicted[0], true[0]) + 1
    if overlap <= 0:
        return 0.0
    precision = overlap / (predicted[1] - predicted[0] + 1)
    recall = overlap / (true[1] - true[0] + 1)
    return 2 * precision * recall / (precision + recall)


class EvalMetrics:
    def __init__(self, device: torch.device):
        # Per question: [best span score, its first and last passage token, lowest no-answer
        # score, the true first and last token].
        self.questions: dict[int, list[float]] = {}
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.windows = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        self.loss_sum += loss.double() * targets.shape[0]
        self.windows += targets.shape[0]
        best, first, last, no_answer = best_spans(logits, targets[:, CONTEXT_START], targets[:, LENGTH])
        shift = (targets[:, OFFSET] - targets[:, CONTEXT_START]).to(first.device)
        rows = zip(
            targets[:, QUESTION].tolist(), best.tolist(), (first + shift).tolist(), (last + shift).tolist(),
            no_answer.tolist(), targets[:, GOLD_START].tolist(), targets[:, GOLD_END].tolist(), strict=True,
        )  # fmt: skip
        for question, score, start, end, null, gold_start, gold_end in rows:
            self.merge(question, [score, start, end, null, gold_start, gold_end])

    def merge(self, question: int, window: list[float]) -> None:
        """Fold one window's proposal into its question's: the better span, the lower no-answer."""
        seen = self.questions.get(question)
        if seen is None:
            self.questions[question] = window
            return
        if window[0] > seen[0]:
            seen[:3] = window[:3]
        seen[3] = min(seen[3], window[3])

    def all_reduce(self) -> None:
        """Combine every process's windows (each saw a different shard of the split)."""
        for tensor in (self.loss_sum, self.windows):
            dist.all_reduce(tensor)
        gathered: list[dict[int, list[float]] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, self.questions)
        self.questions = {}
        for part in gathered:
            for question, window in (part or {}).items():
                self.merge(question, list(window))

    def compute(self) -> dict[str, float]:
        answered_right, f1s, with_answer, without_answer = [], [], [], []
        for score, start, end, null, gold_start, gold_end in self.questions.values():
            predicted = (int(start), int(end)) if score > null else (-1, -1)
            true = (int(gold_start), int(gold_end))
            f1 = token_f1(predicted, true)
            answered_right.append(float(predicted == true))
            f1s.append(f1)
            (with_answer if true[0] >= 0 else without_answer).append(
                (predicted == true, f1, predicted[0] < 0)
            )
        windows = int(self.windows.item())
        count = max(len(f1s), 1)
        return {
            "eval_loss": (self.loss_sum / max(windows, 1)).item(),
            "exact_match": sum(answered_right) / count,
            "f1": sum(f1s) / count,
            "has_answer_exact_match": mean(exact for exact, _, _ in with_answer),
            "has_answer_f1": mean(f1 for _, f1, _ in with_answer),
            "no_answer_accuracy": mean(abstained for _, _, abstained in without_answer),
            "abstentions": mean(abstained for _, _, abstained in with_answer + without_answer),
            "examples": len(f1s),
            "windows": windows,
        }


def mean(values: Iterable[float]) -> float:
    items = [float(value) for value in values]
    return sum(items) / len(items) if items else 0.0


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation of this task's data."""
    return EvalMetrics(device)


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much better the model answers questions on manuals it trained on (F1)."""
    return train["f1"] - val["f1"]
