"""The data: the built-in charts and whether their answers are right for what is drawn, the split,
the two vocabularies, answers as written, and other sources."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from config import Config
from data import (
    BASELINE,
    CHART_SEED,
    CHART_SIZE,
    CHART_TYPES,
    CHARTS,
    COLOURS,
    LEFT,
    ORDINALS,
    PAD,
    QUESTION_KINDS,
    RIGHT,
    SPECIAL_WORDS,
    STEP,
    TOP,
    UNKNOWN,
    Chart,
    ChartPreprocessor,
    ChartQuestions,
    Question,
    TaskData,
    as_number,
    build_data,
    builtin_charts,
    distinct_values,
    drawn_chart,
    normalise_answer,
    split_contents,
    tint,
    words_of,
    y_of,
)

ROOT = Path(__file__).resolve().parents[1]
CHECKED = 300  # built-in charts whose answers are checked against their pixels: 100 of each type


# --- Reading a drawn chart back from its pixels ----------------------------------------------


def value_at(row: float) -> int:
    """The axis value (a multiple of STEP) at a pixel row."""
    return STEP * round((BASELINE - row) * 100 / (BASELINE - TOP) / STEP)


def bars_drawn(pixels: np.ndarray) -> dict[str, tuple[int, int]]:
    """Each bar's colour name -> (its value or total, its lower part), measured in the pixels.

    A bar is a run of one colour along the row just above the baseline; from there its middle column
    is that colour up to the top of the bar (of its lower part, for a stacked bar), then the lighter
    shade of it up to the top of the stack."""
    row, paper = pixels[BASELINE - 1], tuple(pixels[0, 0])
    bars, x = {}, LEFT + 1
    while x <= RIGHT:
        colour = tuple(int(c) for c in row[x])
        if colour == paper:
            x += 1
            continue
        start = x
        while x <= RIGHT and tuple(row[x]) == colour:
            x += 1
        middle, y = (start + x - 1) // 2, BASELINE - 1
        while tuple(pixels[y, middle]) == colour:
            y -= 1
        lower_top = y + 1
        while tuple(pixels[y, middle]) == tint(colour):
            y -= 1
        name = min(COLOURS, key=lambda n: sum(abs(a - b) for a, b in zip(COLOURS[n], colour, strict=True)))
        assert name not in bars, "two bars of one colour"
        bars[name] = (value_at(y + 1), value_at(lower_top))
    return bars


# A line chart's marker: a 4 x 4 disc without its corners, centred between its two middle rows.
MARKER = [(dy, dx) for dy in (-1, 0, 1, 2) for dx in (-1, 0, 1, 2) if dy in (0, 1) or dx in (0, 1)]


def points_drawn(pixels: np.ndarray) -> list[int]:
    """A line chart's points' values, left to right, measured from the centres of their markers."""
    grid = tuple(pixels[int(y_of(100)), RIGHT])
    plot = pixels[TOP - 2 : BASELINE, LEFT + 1 : RIGHT + 1].reshape(-1, 3)
    counts = Counter(tuple(int(c) for c in pixel) for pixel in plot)
    line = next(c for c, _ in counts.most_common() if c not in (tuple(pixels[0, 0]), grid, (60, 60, 60)))
    on = (pixels == np.array(line)).all(axis=2)
    centres = [
        (column, row + 0.5)
        for row in range(1, CHART_SIZE - 2)
        for column in range(1, CHART_SIZE - 2)
        if all(on[row + dy, column + dx] for dy, dx in MARKER)
    ]
    assert len(centres) <= len(ORDINALS), centres
    return [value_at(row) for _, row in sorted(centres)]


def expected_answer(question: str, values: dict[str, int], lowers: dict[str, int] | None = None) -> str:
    """The answer to a built-in question, worked out from the values measured in the chart."""
    if match := re.fullmatch(r"What is the (?:value|total) (?:of|at) the (\w+) (?:bar|point)\?", question):
        return str(values[match[1]])
    if match := re.fullmatch(r"What is the (lower|upper) part of the (\w+) bar\?", question):
        assert lowers is not None
        name = match[2]
        return str(lowers[name] if match[1] == "lower" else values[name] - lowers[name])
    if match := re.fullmatch(r"Which (?:bar|point) (?:is|has) the (\w+)(?: total)?\?", question):
        pick = max if match[1] in ("tallest", "largest", "highest") else min
        return pick(values, key=values.__getitem__)
    comparison = r"Is the (\w+) (?:bar|point) (?:taller|higher) than the (\w+) (?:bar|point)\?"
    if match := re.fullmatch(comparison, question):
        assert match[1] != match[2]
        return "yes" if values[match[1]] > values[match[2]] else "no"
    if re.fullmatch(r"How many (?:bars|points) are there\?", question):
        return str(len(values))
    raise AssertionError(f"a question no test knows: {question!r}")


def measured(chart: Chart) -> tuple[dict[str, int], dict[str, int] | None]:
    """The values a reader sees in a chart: by bar colour or by point ordinal (and stacked bars'
    lower parts)."""
    pixels, chart_type, _ = chart
    if chart_type == "line":
        return dict(zip(ORDINALS, points_drawn(pixels), strict=False)), None
    bars = bars_drawn(pixels)
    return {name: total for name, (total, _) in bars.items()}, {name: low for name, (_, low) in bars.items()}


# --- The built-in charts ---------------------------------------------------------------------


def digest(charts: list[Chart]) -> str:
    content = hashlib.sha256()
    for pixels, chart_type, questions in charts:
        content.update(pixels.tobytes())
        content.update(repr((chart_type, questions)).encode())
    return content.hexdigest()


def test_the_builtin_charts_are_the_same_on_every_call() -> None:
    for index, (pixels, chart_type, questions) in enumerate(builtin_charts(12)):
        again, type_again, questions_again = drawn_chart(
            np.random.default_rng([CHART_SEED, index]), chart_type
        )
        assert np.array_equal(pixels, again) and chart_type == type_again and questions == questions_again
        assert pixels.shape == (CHART_SIZE, CHART_SIZE, 3) and pixels.dtype == np.uint8


def test_the_builtin_charts_are_the_same_in_every_process() -> None:
    """Nothing in drawing them depends on Python's per-process hashing (set or dict order of names)."""
    here = digest(builtin_charts(60))
    code = "from data import builtin_charts; from test_data import digest; print(digest(builtin_charts(60)))"
    for hash_seed in ("1", "2"):
        env = {
            **os.environ,
            "PYTHONHASHSEED": hash_seed,
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}",
        }
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == here


def test_the_three_chart_types_take_turns_and_each_chart_has_one_question_of_each_kind() -> None:
    charts = builtin_charts(9)
    assert [chart_type for _, chart_type, _ in charts] == list(CHART_TYPES) * 3
    for _, _, questions in charts:
        assert [question.kind for question in questions] == list(QUESTION_KINDS)
        assert all(question.text.endswith("?") and question.answer for question in questions)


@pytest.mark.parametrize("chart_type", CHART_TYPES)
def test_each_answer_is_right_for_what_the_chart_shows(chart_type: str) -> None:
    charts = [chart for chart in builtin_charts(CHECKED) if chart[1] == chart_type]
    asked = Counter()
    for chart in charts:
        values, lowers = measured(chart)
        assert 3 <= len(values) <= 6
        assert all(0 <= value <= 100 for value in values.values())
        for question in chart[2]:
            expected = expected_answer(question.text, values, lowers)
            assert question.answer == expected, (question, values, lowers)
            asked[question.text.split()[3]] += 1  # value, total, lower, upper, ...
    assert len(charts) == CHECKED // 3
    if chart_type == "stacked bar":  # both kinds of value question, and both wordings of the extreme
        assert asked["total"] > 10 and asked["lower"] + asked["upper"] > 10
        by_total = Counter(chart[2][1].text.endswith(" total?") for chart in charts)
        assert by_total[True] > 10 and by_total[False] > 10, by_total


def test_a_bar_reaches_the_height_its_value_question_answers() -> None:
    """The value question's bar, found by its colour, ends on the row of the answer's value."""
    for seed in range(40):
        rng = np.random.default_rng([11, seed])
        pixels, _, questions = drawn_chart(rng, "bar")
        name = re.fullmatch(r"What is the value of the (\w+) bar\?", questions[0].text)[1]
        colour = np.array(COLOURS[name])
        near = np.abs(pixels.astype(int) - colour).sum(axis=2) < 60  # the bar's shade of its colour
        rows = np.nonzero(near.any(axis=1))[0]
        assert rows.max() == BASELINE - 1
        assert abs(rows.min() - y_of(int(questions[0].answer))) <= 0.5, (seed, questions[0])


def test_the_extremes_are_never_ties() -> None:
    for chart in builtin_charts(CHECKED):
        values, _ = measured(chart)
        assert len(set(values.values())) == len(values), chart[2]  # "the tallest" is one bar
    for seed in range(200):
        rng = np.random.default_rng(seed)
        values = distinct_values(rng, 6, 0, 100)
        assert len(set(values)) == 6 and all(v % STEP == 0 and 0 <= v <= 100 for v in values)


def test_the_answers_are_balanced_enough_to_learn_from() -> None:
    charts = builtin_charts(CHECKED)
    compare = Counter(q.answer for _, _, questions in charts for q in questions if q.kind == "compare")
    assert compare["yes"] > 0.3 * sum(compare.values()) and compare["no"] > 0.3 * sum(compare.values())
    counts = Counter(q.answer for _, _, questions in charts for q in questions if q.kind == "count")
    assert set(counts) == {"3", "4", "5", "6"}


# --- The split -------------------------------------------------------------------------------


def test_each_charts_questions_stay_on_one_side_of_the_split(data: TaskData, config: Config) -> None:
    train, val = data.train.charts, data.val.charts
    assert len(val) == round(config.val_fraction * CHARTS) and len(train) + len(val) == CHARTS
    assert len(data.train) == 4 * len(train) and len(data.val) == 4 * len(val)
    seen = {hashlib.sha1(pixels.tobytes()).digest() for pixels, _, _ in train}
    assert not any(hashlib.sha1(pixels.tobytes()).digest() in seen for pixels, _, _ in val)
    assert {chart_type for _, chart_type, _ in val} == set(CHART_TYPES)


def test_split_contents_are_the_charts_of_each_side(data: TaskData, config: Config) -> None:
    train, val = split_contents(config)
    train_digests = {hashlib.sha1(content).digest() for content in train}
    val_digests = [hashlib.sha1(content).digest() for content in val]
    assert len(train_digests) == len(data.train.charts) and len(val_digests) == len(data.val.charts)
    assert not train_digests.intersection(val_digests)
    assert hashlib.sha1(data.val.charts[0][0].tobytes()).digest() == val_digests[0]


def test_an_example_is_pixels_question_ids_and_three_targets(data: TaskData, config: Config) -> None:
    (pixels, question), targets = data.val[5]
    assert pixels.shape == (3, config.image_size, config.image_size) and pixels.dtype == torch.float32
    assert question.shape == (config.max_question_words,) and question.dtype == torch.long
    asked, prep = data.val.question(5), data.preprocessor
    assert targets.tolist() == [
        prep.answers.index(asked.answer),
        prep.chart_types.index(data.val.chart_type(5)),
        QUESTION_KINDS.index(asked.kind),
    ]
    assert prep.chart_types == list(CHART_TYPES)
    assert prep.vocabulary[: len(SPECIAL_WORDS)] == SPECIAL_WORDS


def test_training_charts_are_varied_and_validation_charts_are_not(data: TaskData) -> None:
    assert torch.equal(data.val[3][0][0], data.val[3][0][0])
    assert not torch.equal(data.train[3][0][0], data.train[3][0][0])  # the light differs each time
    assert torch.equal(data.train[3][0][1], data.train[3][0][1])  # the question does not


# --- Words, answers and pixels ---------------------------------------------------------------

WORDS = [*SPECIAL_WORDS, "what", "is", "the", "value", "of", "red", "bar", "?"]


def small_preprocessor(max_question_words: int = 12) -> ChartPreprocessor:
    return ChartPreprocessor(
        image_size=32,
        vocabulary=WORDS,
        answers=["10", "yes", "red"],
        chart_types=["bar", "line"],
        max_question_words=max_question_words,
    )


def test_words_split_punctuation_and_keep_numbers() -> None:
    words = ["is", "the", "red", "bar", "taller", "than", "the", "green", "bar", "?"]
    assert words_of("Is the Red bar taller than the green bar?") == words
    words = ["what's", "the", "second", "point's", "value", ",", "in", "%", "?"]
    assert words_of("What's the second point's value, in %?") == words


def test_a_question_is_cut_at_max_question_words_and_padded_below_it() -> None:
    short = small_preprocessor(max_question_words=3).encode_question("What is the value of the red bar?")
    assert short.tolist() == [WORDS.index("what"), WORDS.index("is"), WORDS.index("the")]
    padded = small_preprocessor(max_question_words=6).encode_question("the red bar?")
    assert padded.tolist() == [WORDS.index(w) for w in ("the", "red", "bar", "?")] + [PAD, PAD]


def test_unknown_words_become_unknown() -> None:
    ids = small_preprocessor().encode_question("What is the colour of the red bar?").tolist()
    assert ids[3] == UNKNOWN and ids[:3] == [WORDS.index(w) for w in ("what", "is", "the")]
    assert ids.count(UNKNOWN) == 1


def test_answers_and_chart_types_outside_the_vocabularies_get_target_minus_one() -> None:
    pixels = np.full((CHART_SIZE, CHART_SIZE, 3), 255, dtype=np.uint8)
    bar = [
        Question("What is the value of the red bar?", "55", "value"),  # no answer class 55
        Question("Is the red bar taller than the blue bar?", "yes", "compare"),
    ]
    pie = [Question("What is the value of the red slice?", "10", "value")]  # no chart type pie
    charts: list[Chart] = [(pixels, "bar", bar), (pixels, "pie", pie)]
    questions = ChartQuestions(charts, small_preprocessor())
    assert [questions[i][1].tolist() for i in range(3)] == [[-1, 0, 0], [1, 0, 2], [0, -1, 0]]


def test_answers_outside_a_small_answer_vocabulary_get_target_minus_one(config: Config) -> None:
    data = build_data(replace(config, answer_vocab_size=5))
    assert len(data.preprocessor.answers) == 5
    unknown = 0
    for index in range(0, len(data.val), len(data.val) // 200):
        target = int(data.val[index][1][0])
        answer = data.val.question(index).answer
        known = data.preprocessor.answer_ids
        assert target == known.get(answer, -1)
        unknown += target == -1
    assert unknown > 0


def test_the_preprocessor_saved_with_a_run_reads_charts_the_same_way(data: TaskData, tmp_path: Path) -> None:
    data.preprocessor.save(tmp_path)
    loaded = ChartPreprocessor.load(tmp_path)
    assert loaded == data.preprocessor
    assert loaded.answer_ids == data.preprocessor.answer_ids and loaded.word_ids == data.preprocessor.word_ids
    image, question = data.val.image(0), data.val.question(0).text
    assert torch.equal(loaded.pixels(image), data.preprocessor.pixels(image))
    assert torch.equal(loaded.encode_question(question), data.preprocessor.encode_question(question))


def test_charts_of_any_size_are_resized_to_image_size() -> None:
    prep = small_preprocessor()
    pixels = prep.pixels(Image.new("L", (300, 120), 230))  # greyscale and not square
    assert pixels.shape == (3, 32, 32)
    assert torch.allclose(pixels, torch.full_like(pixels, (230 / 255 - 0.9) / 0.25), atol=1e-5)


@pytest.mark.parametrize(
    ("written", "number", "normalised"),
    [
        ("1,200", 1200.0, "1200"),
        ("35%", 35.0, "35"),
        ("7.0", 7.0, "7"),
        ("2.50", 2.5, "2.5"),
        (" -2.5 ", -2.5, "-2.5"),
        ("abc", None, "abc"),
        (" Yes ", None, "yes"),
        ("nan", None, "nan"),
        ("", None, ""),
    ],
)
def test_answers_are_compared_as_written_less_case_space_and_trailing_zeros(
    written: str, number: float | None, normalised: str
) -> None:
    assert as_number(written) == number
    assert normalise_answer(written) == normalised


# --- Other sources ---------------------------------------------------------------------------


def saved_chart_questions(path: Path, rows: int) -> Path:
    """A dataset laid out as ChartQA's: image, query, and the answer as a list of one label."""
    from datasets import Dataset, Features, Sequence, Value
    from datasets import Image as ImageFeature

    images = [Image.new("RGB", (80, 60), (20 * i, 40, 90)) for i in range(rows)]
    Dataset.from_dict(
        {
            "image": images,
            "query": [f"What is the value of bar {i}?" for i in range(rows)],
            "label": [[f"{i}.0"] for i in range(rows)],
            "type": ["human" if i % 2 else "machine" for i in range(rows)],
        },
        features=Features(
            {
                "image": ImageFeature(),
                "query": Value("string"),
                "label": Sequence(Value("string")),
                "type": Value("string"),
            }
        ),
    ).save_to_disk(str(path))
    return path


def test_a_saved_chart_qa_dataset_is_read(config: Config, tmp_path: Path) -> None:
    saved = saved_chart_questions(tmp_path / "charts", 10)
    data = build_data(replace(config, dataset=str(saved), val_fraction=0.2))
    assert len(data.train) + len(data.val) == 10
    (pixels, _), targets = data.train[0]
    assert pixels.shape == (3, config.image_size, config.image_size)
    asked = data.train.question(0)
    assert re.fullmatch(r"What is the value of bar \d\?", asked.text) and asked.answer == asked.text[-2]
    assert set(data.preprocessor.chart_types) <= {"human", "machine"}
    assert int(targets[1]) == data.preprocessor.chart_types.index(data.train.chart_type(0))
