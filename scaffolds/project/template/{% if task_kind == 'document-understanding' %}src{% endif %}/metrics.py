"""Evaluation metrics for invoice extraction, over whole invoices rather than pages.

Each page's word tags are kept as the batches come (by the page's index in the targets' last
column), then each invoice whose pages were all evaluated is read twice by extraction.py, from the
model's tags and from the true ones, and the two compared field by field after normalisation:
  f1, precision, recall   over every field of every invoice (the six header fields, and each line
                          item as one field: right only when its four cells are)
  f1_<field>              the same per field (f1_vendor ... f1_line_items): the spec's per-field F1
  exact_match             the share of invoices whose total was read exactly (the spec's reward)
  multipage_item_recall   the line items found on invoices of more than one page, of all there are
  unflagged_mismatches    the share of invoices whose totals do not add up that the extraction did
                          not flag (the spec's penalty), and false_flags the share of invoices that
                          add up but were flagged
  accuracy                word tags right, of all words
A page of more than max_length words is read in windows of max_length words, one row each, as the
predictor reads it (the built-in pages have at most 122 words, so one row each).
Names match the task spec's metric names, so `runner.py check` can compare them directly.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from data import IGNORE, TaskData
from extraction import HEADER_FIELDS, comparable, extract, field_counts

MONITOR = "f1"  # the metric that picks the best checkpoint and drives early stopping
HIGHER_IS_BETTER = True
THROUGHPUT = "samples_per_s"  # what the training log counts per second (pages)
FIELDS = (*HEADER_FIELDS, "line_items")
SUM_FLAGS = {"line_items_do_not_sum_to_subtotal", "subtotal_and_tax_do_not_make_total"}


def items_in_batch(targets: torch.Tensor) -> int:
    return targets.shape[0]


def scores(right: int, predicted: int, true: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (0 where nothing was predicted or true)."""
    precision = right / predicted if predicted else 0.0
    recall = right / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


class EvalMetrics:
    def __init__(self, data: TaskData, device: torch.device):
        # Validation rows are numbered from 0; training rows (the train-val gap's sample) follow.
        self.splits = (data.val, data.train)
        rows, width = len(data.val) + len(data.train), data.preprocessor.max_length
        self.labels = data.preprocessor.labels
        self.tags = torch.full((rows, width), -1, dtype=torch.long, device=device)  # -1: not seen
        self.confidence = torch.zeros(rows, width, device=device)
        self.words = torch.zeros(2, dtype=torch.long, device=device)  # tagged right, tagged
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.rows = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        tags, index = targets[:, :-1][:, : logits.shape[1]], targets[:, -1]
        probabilities = logits.float().softmax(dim=-1)
        confidence, predictions = probabilities.max(dim=-1)
        scored = tags != IGNORE
        self.words += torch.stack([(predictions == tags)[scored].sum(), scored.sum()])
        self.loss_sum += loss.double() * targets.shape[0]
        self.rows += targets.shape[0]
        width = predictions.shape[1]
        # A row per window of a page (training rows after the validation ones: see
        # data.InvoicePages); words that carry no tag (padding) are -2, rows never seen keep -1.
        self.tags[index, :width] = torch.where(scored, predictions, torch.full_like(predictions, -2))
        self.confidence[index, :width] = confidence

    def all_reduce(self) -> None:
        """Each process saw a different shard: every page's tags end up on every process."""
        for tensor in (self.tags, self.confidence):
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        for tensor in (self.words, self.loss_sum, self.rows):
            dist.all_reduce(tensor)

    def invoices_seen(self) -> list[tuple[list, list[list[str]], list[list[float]]]]:
        """(pages, predicted tags, confidences) of each invoice all of whose rows were evaluated."""
        found = []
        for split_number, split in enumerate(self.splits):
            offset = 0 if split_number == 0 else len(self.splits[0])
            first_page = 0
            for invoice in split.invoices:
                page_rows = [
                    [offset + row for row in split.rows_of_page[number]]
                    for number in range(first_page, first_page + len(invoice.pages))
                ]
                first_page += len(invoice.pages)
                if any(int(self.tags[row, 0]) == -1 for rows in page_rows for row in rows):
                    continue
                tags, confidence = [], []
                for rows, page in zip(page_rows, invoice.pages, strict=True):
                    count = len(page.words)
                    ids = self.tags[rows].flatten()[:count].tolist()
                    tags.append([self.labels[i] if i >= 0 else "O" for i in ids])
                    confidence.append(self.confidence[rows].flatten()[:count].tolist())
                found.append((invoice.pages, tags, confidence))
        return found

    def compute(self) -> dict[str, float]:
        results: dict[str, float] = {"eval_loss": (self.loss_sum / max(int(self.rows.item()), 1)).item()}
        results["accuracy"] = self.words[0].item() / max(self.words[1].item(), 1)
        counts = {name: [0, 0, 0] for name in FIELDS}
        totals_right = invoices = mismatches = unflagged = fine = false_flags = 0
        multipage = [0, 0]  # line items found, line items there are, on invoices of 2+ pages
        tags_used: set[str] = set()
        pages = 0
        for invoice_pages, tags, confidence in self.invoices_seen():
            pages += len(invoice_pages)
            predicted = extract(invoice_pages, tags, confidence)
            true = extract(invoice_pages, [page.tags or [] for page in invoice_pages])
            tags_used.update(tag for page_tags in tags for tag in page_tags)
            for name, (right, guessed, real) in field_counts(comparable(predicted), comparable(true)).items():
                counts[name][0] += right
                counts[name][1] += guessed
                counts[name][2] += real
                if name == "line_items" and len(invoice_pages) > 1:
                    multipage[0] += right
                    multipage[1] += real
            invoices += 1
            totals_right += int(predicted["total"] is not None and predicted["total"] == true["total"])
            if SUM_FLAGS & set(true["flags"]):  # type: ignore[arg-type]
                mismatches += 1
                unflagged += int(not predicted["flags"])
            else:
                fine += 1
                false_flags += int(bool(predicted["flags"]))
        overall = [sum(column) for column in zip(*counts.values(), strict=True)]
        results |= scores(*overall)
        for name in FIELDS:
            results[f"f1_{name}"] = scores(*counts[name])["f1"]
        results["exact_match"] = totals_right / max(invoices, 1)
        results["multipage_item_recall"] = multipage[0] / multipage[1] if multipage[1] else 0.0
        results["unflagged_mismatches"] = unflagged / mismatches if mismatches else 0.0
        results["false_flags"] = false_flags / fine if fine else 0.0
        results["examples"] = invoices
        results["pages"] = pages
        results["predicted_classes"] = len(tags_used)
        return results


def new_metrics(data: TaskData, device: torch.device) -> EvalMetrics:
    """Fresh counters for one evaluation of this task's data."""
    return EvalMetrics(data, device)


def generalization_gap(train: dict[str, float], val: dict[str, float]) -> float:
    """How much better the model reads invoices of vendors it trained on (field F1)."""
    return train["f1"] - val["f1"]
