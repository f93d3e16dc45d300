"""The chart QA metrics against examples worked out by hand: ChartQA's relaxed accuracy (numbers
within 5%, a true 0 only exactly, anything else as written), exact match, the per-type and
per-kind figures, and the questions whose answer no class holds."""

from __future__ import annotations

import pytest
import torch

from data import QUESTION_KINDS, TaskData
from metrics import (
    HIGHER_IS_BETTER,
    MONITOR,
    TOLERANCE,
    EvalMetrics,
    generalization_gap,
    items_in_batch,
    metric_name,
    new_metrics,
)

ANSWERS = ["100", "104", "105", "105.1", "106", "94.9", "95", "0", "1", "0.5"]
ANSWERS += ["1000", "1050", "1051", "949", "950", "-100", "-104", "-106", "yes", "no", "red", "50%"]
CHART_TYPES = ["bar", "stacked bar", "line"]


def counters() -> EvalMetrics:
    return EvalMetrics(ANSWERS, CHART_TYPES, torch.device("cpu"))


def batch(
    pairs: list[tuple[str, str | None]], chart_type: int = 0, kind: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, targets) of questions answered `predicted` whose true answer is `truth` (None: an
    answer no class holds), all of one chart type and one kind of question."""
    predicted = torch.tensor([ANSWERS.index(guess) for guess, _ in pairs])
    logits = torch.nn.functional.one_hot(predicted, len(ANSWERS)).float()
    truth = [-1 if answer is None else ANSWERS.index(answer) for _, answer in pairs]
    targets = torch.tensor([[answer, chart_type, kind] for answer in truth])
    return logits, targets


def scores(pairs: list[tuple[str, str | None]]) -> dict[str, float]:
    metrics = counters()
    metrics.update(*batch(pairs), torch.tensor(1.0))
    return metrics.compute()


def right(guess: str, truth: str | None) -> bool:
    """Whether one answer counts right under relaxed accuracy."""
    return scores([(guess, truth)])["accuracy"] == 1.0


def test_a_number_within_5_percent_of_the_truth_is_right_and_one_further_off_is_not() -> None:
    assert right("104", "100") and right("105", "100") and right("95", "100")  # 5% itself counts
    assert not right("106", "100") and not right("94.9", "100")
    assert scores([("104", "100"), ("106", "100")]) == pytest.approx(
        {
            "accuracy": 0.5,
            "exact_match": 0.0,
            "eval_loss": 1.0,
            "examples": 2,
            "accuracy_bar": 0.5,
            "accuracy_value": 0.5,
        }
    )
    assert TOLERANCE == 0.05


def test_no_answer_more_than_5_percent_off_counts_right() -> None:
    """The spec's penalty, "numeric answers off by more than 5% counted as correct by the metric",
    cannot happen: 5.1% off, either way and at any scale, is wrong."""
    assert not right("105.1", "100") and not right("94.9", "100")
    assert not right("1051", "1000") and not right("949", "1000")
    assert right("1050", "1000") and right("950", "1000")
    assert right("-104", "-100") and not right("-106", "-100")  # 5% of the size of a negative truth
    assert not right("100", "-100")  # nor is a sign flipped
    assert not right("105", "1") and not right("1", "100")


def test_a_true_zero_is_met_only_exactly() -> None:
    assert right("0", "0")
    assert not right("0.5", "0") and not right("1", "0")
    assert not right("0", "1") and not right("0", "0.5")  # nor is 0 within 5% of a small number


def test_answers_that_are_not_numbers_must_match_exactly() -> None:
    assert right("yes", "yes") and right("red", "red")
    assert not right("no", "yes") and not right("red", "yes")
    assert not right("yes", "100") and not right("100", "red")  # a word is never near a number
    assert right("50%", "50%") and not right("yes", "50%")


def test_exact_match_counts_only_the_true_answer_itself() -> None:
    results = scores([("104", "100"), ("100", "100"), ("red", "red"), ("no", "yes")])
    assert results["accuracy"] == pytest.approx(3 / 4) and results["exact_match"] == pytest.approx(2 / 4)


def test_a_question_whose_answer_no_class_holds_counts_wrong() -> None:
    # Class 0 is "100": the unknown truth must not be read as class 0 (or any number near it).
    results = scores([("100", None), ("104", None), ("yes", None), ("100", "100")])
    assert results["accuracy"] == pytest.approx(1 / 4) and results["exact_match"] == pytest.approx(1 / 4)
    assert results["examples"] == 4


def test_each_chart_type_and_kind_of_question_gets_its_own_figure() -> None:
    metrics = counters()
    for logits, targets in (
        batch([("100", "100"), ("yes", "no")], chart_type=0, kind=QUESTION_KINDS.index("value")),
        batch([("104", "100"), ("106", "100"), ("no", "no"), ("red", "yes")], chart_type=1, kind=2),
        batch([("1", "1"), ("red", "red"), ("yes", "yes"), ("0", "1")], chart_type=2, kind=2),
    ):
        metrics.update(logits, targets, torch.tensor(0.5))
    results = metrics.compute()
    assert results == pytest.approx(
        {
            "accuracy": 6 / 10,
            "exact_match": 5 / 10,
            "eval_loss": 0.5,
            "examples": 10,
            "accuracy_bar": 1 / 2,
            "accuracy_stacked_bar": 2 / 4,
            "accuracy_line": 3 / 4,
            "accuracy_value": 1 / 2,
            "accuracy_compare": 5 / 8,
        }
    )  # no extreme or count questions: no figure for them, rather than a made-up 0


def test_a_group_the_split_does_not_have_gets_no_figure() -> None:
    results = scores([("100", "100")])  # one bar chart's value question
    groups = {name for name in results if name.startswith("accuracy_")}
    assert groups == {"accuracy_bar", "accuracy_value"}
    assert "accuracy_line" not in results and "accuracy_stacked_bar" not in results


def test_a_chart_type_the_run_does_not_know_counts_overall_but_in_no_type() -> None:
    metrics = counters()
    metrics.update(*batch([("100", "100"), ("no", "yes")], chart_type=-1), torch.tensor(1.0))
    metrics.update(*batch([("red", "red")], chart_type=2), torch.tensor(1.0))
    results = metrics.compute()
    assert results["accuracy"] == pytest.approx(2 / 3) and results["accuracy_line"] == 1.0
    assert "accuracy_bar" not in results and results["accuracy_value"] == pytest.approx(2 / 3)


def test_the_loss_is_averaged_over_questions_not_batches() -> None:
    metrics = counters()
    metrics.update(*batch([("100", "100"), ("100", "100"), ("100", "100")]), torch.tensor(2.0))
    metrics.update(*batch([("yes", "no")]), torch.tensor(6.0))
    results = metrics.compute()
    assert results["eval_loss"] == pytest.approx((3 * 2.0 + 6.0) / 4) and results["examples"] == 4


def test_the_loss_counts_only_questions_whose_answer_is_a_class() -> None:
    """The model's loss of a batch is its mean over the answers it knows (others add nothing)."""
    metrics = counters()
    metrics.update(*batch([("100", "100"), ("100", None)]), torch.tensor(2.0))
    metrics.update(*batch([("yes", "no")]), torch.tensor(5.0))
    assert metrics.compute()["eval_loss"] == pytest.approx((2.0 + 5.0) / 2)


def test_no_questions_score_zero_rather_than_failing() -> None:
    results = counters().compute()
    assert results == {"eval_loss": 0.0, "accuracy": 0.0, "exact_match": 0.0, "examples": 0}


def test_the_names_are_the_specs() -> None:
    assert [metric_name(t) for t in CHART_TYPES] == ["accuracy_bar", "accuracy_stacked_bar", "accuracy_line"]
    assert metric_name("Human  Made") == "accuracy_human_made"
    assert MONITOR == "accuracy" and HIGHER_IS_BETTER


def test_every_builtin_group_is_reported_for_the_validation_charts(data: TaskData) -> None:
    metrics = new_metrics(data, torch.device("cpu"))
    targets = torch.stack([data.val[i][1] for i in range(120)])  # the first 30 charts' questions
    logits = torch.nn.functional.one_hot(targets[:, 0], len(data.preprocessor.answers)).float()
    metrics.update(logits, targets, torch.tensor(0.0))
    results = metrics.compute()
    groups = [*data.preprocessor.chart_types, *QUESTION_KINDS]
    names = ["accuracy", "exact_match", *(metric_name(group) for group in groups)]
    assert {name: results[name] for name in names} == dict.fromkeys(names, 1.0)
    assert "accuracy_stacked_bar" in names and results["examples"] == 120


def test_the_gap_is_how_much_better_training_charts_are_read() -> None:
    assert generalization_gap({"accuracy": 0.9}, {"accuracy": 0.75}) == pytest.approx(0.15)
    assert items_in_batch(torch.zeros(5, 3, dtype=torch.long)) == 5
