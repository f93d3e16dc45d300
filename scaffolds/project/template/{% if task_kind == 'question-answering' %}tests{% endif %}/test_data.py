"""Reading data: the generated manuals, the split by device, answers found in windows of long
passages, and SQuAD-layout files."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest

from config import Config, ProjectError
from data import (
    END,
    GOLD_END,
    GOLD_START,
    START,
    Question,
    QuestionWindows,
    TaskData,
    build_data,
    product_manuals,
    split_contents,
)
from loading import count_shared


@pytest.fixture(scope="module")
def manuals():
    return product_manuals()


def test_the_manuals_are_the_same_on_every_build(manuals) -> None:
    again = product_manuals()
    assert manuals["train"][:50] == again["train"][:50]
    assert manuals["validation"]["question"] == again["validation"]["question"]


def test_no_device_is_in_both_splits_and_no_passage_leaks(manuals, config: Config) -> None:
    assert not set(manuals["train"]["device"]) & set(manuals["validation"]["device"])
    assert count_shared(*split_contents(config)) == 0


def test_every_answer_is_where_it_says_and_some_questions_have_none(manuals) -> None:
    answered = unanswered = 0
    for row in manuals["validation"]:
        texts, starts = row["answers"]["text"], row["answers"]["answer_start"]
        if texts:
            answered += 1
            assert row["context"][starts[0] : starts[0] + len(texts[0])] == texts[0]
        else:
            unanswered += 1
    assert answered > 500 and 100 < unanswered < answered
    # An error code the manual does not explain, though it explains another: no answer.
    codes = [row for row in manuals["validation"] if row["question"].startswith("What does error")]
    assert any(not row["answers"]["text"] and "Error E" in row["context"] for row in codes)


def test_training_also_asks_questions_of_the_wrong_section(manuals) -> None:
    """Questions asked again of another section of the manual, with no answer there."""
    by_question: dict[str, set[str]] = {}
    for row in manuals["train"]:
        by_question.setdefault(row["question"], set()).add(row["title"])
    asked_twice = [titles for titles in by_question.values() if len(titles) > 1]
    assert len(asked_twice) > 500
    assert all(len({title.split(": ")[0] for title in titles}) == 1 for titles in asked_twice)


def test_window_targets_point_at_the_answer_tokens(data: TaskData) -> None:
    preprocessor = data.preprocessor
    for number, question in enumerate(data.val.questions[:200]):
        rows = (data.val.targets[:, 2] == number).nonzero().flatten()
        encoded = preprocessor.encode(question.question, question.context, question.title)
        first, last = data.val.targets[rows[0], GOLD_START].item(), data.val.targets[rows[0], GOLD_END].item()
        if not question.answer:
            assert first == last == -1 and (data.val.targets[rows, START] == 0).all()
            continue
        characters = encoded.char_spans[first][0], encoded.char_spans[last][1]
        assert question.context[slice(*characters)] == question.answer
        inside = [row for row in rows if data.val.targets[row, START] > 0]
        assert inside, "the answer lies whole in at least one window"
        for row in inside:
            ids = data.val.input_ids[row, data.val.targets[row, START] : data.val.targets[row, END] + 1]
            expected = preprocessor.tokenizer(question.answer, add_special_tokens=False)["input_ids"]
            assert ids.tolist() == expected


def test_a_long_passage_is_read_in_overlapping_windows(data: TaskData) -> None:
    filler = "Keep this manual for future reference. " * 40
    question = Question("How much does the unit weigh?", filler + "The unit weighs 2.4 kg.", "Unit", "2.4 kg")
    question.answer_start = question.context.index("2.4 kg")
    windows = QuestionWindows([question], data.preprocessor)
    encoded = data.preprocessor.encode(question.question, question.context, question.title)
    assert len(encoded.windows) == len(windows) > 2
    assert all(len(window.input_ids) == data.preprocessor.max_length for window in encoded.windows)
    covered = set()
    for before, after in itertools.pairwise(encoded.windows):
        assert after.offset < before.offset + before.length  # they overlap: no answer is cut in two
    for window in encoded.windows:
        covered |= set(range(window.offset, window.offset + window.length))
    assert covered == set(range(len(encoded.char_spans)))
    assert windows.targets[-1, START] > 0 and (windows.targets[:-1, START] == 0).all()


@pytest.fixture
def squad_file(tmp_path: Path) -> Path:
    rows = []
    for number in range(20):
        context = f"Device {number} runs on {number + 3} batteries. It was made in {1990 + number}."
        start = context.index(f"{number + 3} batteries")
        rows.append(
            {
                "title": f"Device {number}",
                "context": context,
                "question": "How many batteries?",
                "answers": {"text": [f"{number + 3} batteries"], "answer_start": [start]},
            }
        )
        rows.append({"title": f"Device {number}", "context": context, "question": "What colour is it?",
                     "answers": {"text": [], "answer_start": []}})  # fmt: skip
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_squad_layout_file_is_split_by_passage(config: Config, squad_file: Path) -> None:
    config = replace(config, dataset=str(squad_file))
    data = build_data(config)
    train_passages = {q.context for q in data.train.questions}
    val_passages = {q.context for q in data.val.questions}
    assert val_passages and not train_passages & val_passages
    assert len(data.train.questions) + len(data.val.questions) == 40
    assert {q.answer for q in data.val.questions if not q.answer} == {""}


def test_an_answer_not_at_its_offset_is_refused(config: Config, squad_file: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in squad_file.read_text().splitlines()]
    rows[0]["answers"]["answer_start"] = [0]
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ProjectError, match="does not occur at its answer_start"):
        build_data(replace(config, dataset=str(broken)))


def test_a_missing_question_column_names_the_setting(config: Config, tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text(
        json.dumps({"ask": "x", "context": "y", "answers": {"text": [], "answer_start": []}}) + "\n"
    )
    with pytest.raises(ProjectError, match="question_column"):
        build_data(replace(config, dataset=str(path)))
    path.write_text(json.dumps({"question": "x", "context": "y"}) + "\n")
    with pytest.raises(ProjectError, match="no answers column among question, context; give each question"):
        build_data(replace(config, dataset=str(path)))
