"""The layout tagger and its metrics: a row of tag logits per word, padding and the page-number
column ignored; invoices scored field by field from whole invoices, the penalty's flags counted."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from config import Config, ProjectError
from data import IGNORE, InvoicePages, Page, TaskData, build_data
from metrics import EvalMetrics
from network import LayoutTagger, build_model, count_parameters


def batch(data: TaskData, indices: list[int]) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    items = [data.val[i] for i in indices]
    inputs = tuple(torch.stack([item[0][part] for item in items]) for part in range(3))
    return inputs, torch.stack([item[1] for item in items])


def test_one_row_of_tag_logits_per_word_and_a_loss(config: Config, data: TaskData) -> None:
    model = build_model(config, data.preprocessor)
    assert isinstance(model, LayoutTagger)
    inputs, targets = batch(data, [0, 1])
    logits, loss = model(inputs, targets)
    longest = max(len(data.val.pages[i].words) for i in (0, 1))  # padding columns cropped
    assert logits.shape == (2, longest, len(data.preprocessor.labels)) and torch.isfinite(loss)
    assert model(inputs)[1] is None
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_padding_and_batch_mates_do_not_change_a_pages_tags(config: Config, data: TaskData) -> None:
    torch.manual_seed(0)
    model = build_model(config, data.preprocessor).eval()
    inputs, _ = batch(data, [0, 1])
    with torch.no_grad():
        alone = model(tuple(part[1:] for part in inputs))[0]
        together = model(inputs)[0][1:, : alone.shape[1]]
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=1e-5)


def test_hidden_words_only_in_training(config: Config, data: TaskData) -> None:
    torch.manual_seed(0)
    model = build_model(replace(config, word_dropout=0.9, dropout=0.0), data.preprocessor)
    inputs, _ = batch(data, [0])
    with torch.no_grad():
        model.eval()
        first, second = model(inputs)[0], model(inputs)[0]
        model.train()
        hidden = model(inputs)[0]
    torch.testing.assert_close(first, second)
    assert not torch.allclose(first, hidden)


def test_the_loss_ignores_padding_and_the_page_number(config: Config, data: TaskData) -> None:
    model = build_model(config, data.preprocessor).eval()
    inputs, targets = batch(data, [2])
    renumbered = targets.clone()
    renumbered[:, -1] = 12345
    with torch.no_grad():
        torch.testing.assert_close(model(inputs, targets)[1], model(inputs, renumbered)[1])


def perfect_logits(targets: torch.Tensor, classes: int) -> torch.Tensor:
    tags = targets[:, :-1].clamp(min=0)
    return torch.nn.functional.one_hot(tags, classes).float() * 20


def evaluate_with(data: TaskData, logits_for: callable) -> dict[str, float]:
    counters = EvalMetrics(data, torch.device("cpu"))
    for start in range(0, len(data.val), 64):
        _, targets = batch(data, list(range(start, min(start + 64, len(data.val)))))
        counters.update(logits_for(targets), targets, torch.tensor(0.1))
    return counters.compute()


def test_true_tags_score_every_field_and_flag_every_mismatch(data: TaskData) -> None:
    classes = len(data.preprocessor.labels)
    results = evaluate_with(data, lambda targets: perfect_logits(targets, classes))
    assert results["f1"] == results["exact_match"] == results["accuracy"] == 1.0
    assert all(results[f"f1_{name}"] == 1.0 for name in ("vendor", "date", "total", "line_items"))
    assert results["multipage_item_recall"] == 1.0
    assert results["unflagged_mismatches"] == 0.0 and results["false_flags"] == 0.0
    assert results["examples"] == len(data.val.invoices) and results["pages"] == len(data.val)


def test_a_missed_total_costs_exact_match_and_is_flagged(data: TaskData) -> None:
    labels = data.preprocessor.labels
    total = labels.index("B-TOTAL")

    def without_totals(targets: torch.Tensor) -> torch.Tensor:
        logits = perfect_logits(targets, len(labels))
        found = targets[:, :-1] == total
        logits[found] = perfect_logits(torch.zeros(1, 2, dtype=torch.long), len(labels))[0, 0]  # tagged O
        return logits

    results = evaluate_with(data, without_totals)
    assert results["exact_match"] == 0.0 and results["f1_total"] == 0.0 and results["f1_vendor"] == 1.0
    assert results["false_flags"] == 1.0  # every invoice now lacks its total, which is flagged
    assert results["f1"] < 1.0


def test_a_page_longer_than_max_length_is_trained_and_scored_in_windows(data: TaskData) -> None:
    """A dense page (its totals after word max_length) takes two rows: every word is a target once,
    and the totals on the second row are read back when the invoice is scored."""
    invoice = next(invoice for invoice in data.val.invoices if len(invoice.pages) == 1)
    page, filler = invoice.pages[0], data.preprocessor.max_length
    dense = Page(
        ["Ref"] * filler + page.words, [(50, 5, 60, 8)] * filler + page.boxes, ["O"] * filler + page.tags
    )
    preprocessor = data.preprocessor
    val = InvoicePages([replace(invoice, pages=[dense])], preprocessor)
    assert val.rows_of_page == [[0, 1]] and len(val) == 2 and len(dense.words) > preprocessor.max_length
    assert int((val.targets[:, :-1] != IGNORE).sum()) == len(dense.words)
    windows = TaskData(InvoicePages([invoice], preprocessor, first_number=len(val)), val, preprocessor)
    classes = len(preprocessor.labels)
    results = evaluate_with(windows, lambda targets: perfect_logits(targets, classes))
    assert results["examples"] == 1 and results["pages"] == 1
    assert results["exact_match"] == results["f1"] == results["f1_total"] == 1.0


def test_pages_not_evaluated_leave_their_invoice_out(data: TaskData) -> None:
    counters = EvalMetrics(data, torch.device("cpu"))
    _, targets = batch(data, [0])
    counters.update(perfect_logits(targets, len(data.preprocessor.labels)), targets, torch.tensor(0.0))
    results = counters.compute()
    assert results["examples"] == (1 if len(data.val.invoices[0].pages) == 1 else 0)
    assert targets[0, -1] == 0 and (targets[0, :-1] != IGNORE).sum() == len(data.val.pages[0].words)


def test_a_hugging_face_model_name_is_refused_in_one_line(config: Config) -> None:
    with pytest.raises(ProjectError, match="model_name is not supported"):
        build_data(replace(config, model_name="microsoft/layoutlm-base-uncased"))
