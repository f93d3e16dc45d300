"""Charts and questions in, answers out: the sources, the split, and the two vocabularies.

Where the charts come from (config.dataset):
  builtin      charts drawn here from a fixed seed (nothing is downloaded), as DVQA and PlotQA
               draw theirs: bar charts, stacked bar charts and line charts of three to six
               values on a 0-100 axis, 64 x 64 pixels, each with four questions written from the
               values it shows ("What is the value of the blue bar?", "Which point is the
               highest?", "Is the red bar taller than the green bar?", "How many bars are there?")
  a folder     a dataset saved with `save_to_disk`
  a file       .json / .jsonl / .parquet with an image column, a question column and an answer
               column (and, if it has one, a chart-type column for the per-type report)
  a hub name   any Hugging Face chart or image QA dataset with those columns (ChartQA's are
               image, query and label); needs the network once

Charts with horizontal bars (ChartQA has many) need `--set row_strips=true`: the reader reads
columns only by default, which is all the built-in charts need.

Answers are classes: the training answers (numbers written as the chart's values are, colour
names, ordinals, yes and no), the most frequent `answer_vocab_size` of them. Questions are words
of a vocabulary built from the training questions. A batch is (pixels [batch, 3, size, size],
question word ids [batch, max_question_words]) and targets [batch, 3]: the answer's id, the chart's
type and the question's kind, the last two for the per-type report.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from config import Config, ProjectError
from loading import find_column, read_dataset, train_val_split

PAD, UNKNOWN = 0, 1
SPECIAL_WORDS = ["<pad>", "<unk>"]
CHARTS = 12000  # built-in charts
CHART_SIZE = 64
CHART_SEED = 2026
QUESTIONS_PER_CHART = 4

CHART_TYPES = ("bar", "stacked bar", "line")  # a dataset's charts without a type column: "chart"
QUESTION_KINDS = ("value", "extreme", "compare", "count")
COLOURS = {
    "red": (205, 45, 50),
    "orange": (240, 140, 30),
    "green": (45, 150, 70),
    "blue": (45, 95, 205),
    "purple": (125, 60, 165),
    "grey": (120, 120, 120),
}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
STEP = 5  # the built-in charts' values are multiples of 5, as a report's rounded figures are

# The plot area inside the 64-pixel chart: value 0 on the baseline, value 100 at the top line.
LEFT, RIGHT, BASELINE, TOP = 9, 61, 58, 8


@dataclass(frozen=True)
class Question:
    text: str
    answer: str
    kind: str  # one of QUESTION_KINDS; "other" for a dataset's questions


Chart = tuple[np.ndarray, str, list[Question]]  # pixels [height, width, 3], chart type, questions


# --- The built-in charts ---------------------------------------------------------------------


def y_of(value: float) -> float:
    return BASELINE - (BASELINE - TOP) * value / 100


def blank_chart(rng: np.random.Generator) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A white (or faintly tinted) canvas with the axis and grid lines at 0, 20 ... 100."""
    paper = tuple(int(c) for c in 255 - rng.integers(0, 12, size=3))
    image = Image.new("RGB", (CHART_SIZE, CHART_SIZE), paper)
    draw = ImageDraw.Draw(image)
    grid = int(rng.integers(205, 230))
    for value in range(20, 101, 20):
        draw.line([(LEFT, y_of(value)), (RIGHT, y_of(value))], fill=(grid, grid, grid))
    draw.line([(LEFT, TOP - 2), (LEFT, BASELINE)], fill=(60, 60, 60))
    draw.line([(LEFT, BASELINE), (RIGHT, BASELINE)], fill=(60, 60, 60))
    for value in range(0, 101, 20):  # tick marks on the value axis
        draw.line([(LEFT - 3, y_of(value)), (LEFT, y_of(value))], fill=(60, 60, 60))
    return image, draw


def shade(colour: tuple[int, int, int], rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(np.clip(c + rng.normal(0, 8), 0, 255)) for c in colour)


def tint(colour: tuple[int, ...]) -> tuple[int, ...]:
    """The lighter shade a stacked bar's upper part is drawn in."""
    return tuple(int(c + (255 - c) * 0.55) for c in colour)


def distinct_values(rng: np.random.Generator, count: int, low: int, high: int) -> list[int]:
    """`count` different multiples of STEP in [low, high], so "the tallest" is never a tie."""
    choices = np.arange(low, high + 1, STEP)
    return [int(v) for v in rng.choice(choices, size=count, replace=False)]


def bar_slots(count: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """The left and right edge of each of `count` bars spread over the plot area."""
    slot = (RIGHT - LEFT - 2) / count
    width = slot * rng.uniform(0.5, 0.75)
    return [
        (LEFT + 2 + slot * (i + 0.5) - width / 2, LEFT + 2 + slot * (i + 0.5) + width / 2)
        for i in range(count)
    ]


def ask_about_bars(
    names: list[str], values: list[int], rng: np.random.Generator, what: str
) -> list[Question]:
    """The questions a reader asks of bars named by colour: a value, the tallest or shortest, a
    comparison, the count. `what` is "value" for bars, "total" for stacked bars."""
    index = int(rng.integers(len(names)))
    first, second = (int(i) for i in rng.choice(len(names), size=2, replace=False))
    extreme = str(rng.choice(["tallest", "shortest"]))
    pick = max if extreme == "tallest" else min
    winner = names[pick(range(len(names)), key=lambda i: values[i])]
    # A stacked bar's total is its height, so readers ask for the tallest stacked bar as well as for
    # the largest total: half the charts each way, chosen without drawing from `rng`.
    by_total = what == "total" and sum(values) % 2 == 0
    extreme_question = (
        f"Which bar has the {'largest' if extreme == 'tallest' else 'smallest'} total?"
        if by_total
        else f"Which bar is the {extreme}?"
    )
    return [
        Question(f"What is the {what} of the {names[index]} bar?", str(values[index]), "value"),
        Question(extreme_question, winner, "extreme"),
        Question(
            f"Is the {names[first]} bar taller than the {names[second]} bar?",
            "yes" if values[first] > values[second] else "no",
            "compare",
        ),
        Question("How many bars are there?", str(len(names)), "count"),
    ]


def bar_chart(rng: np.random.Generator) -> tuple[Image.Image, list[Question]]:
    count = int(rng.integers(3, 7))
    names = [str(n) for n in rng.choice(list(COLOURS), size=count, replace=False)]
    values = distinct_values(rng, count, STEP, 100)
    image, draw = blank_chart(rng)
    for (x0, x1), name, value in zip(bar_slots(count, rng), names, values, strict=True):
        draw.rectangle([x0, y_of(value), x1, BASELINE - 1], fill=shade(COLOURS[name], rng))
    return image, ask_about_bars(names, values, rng, "value")


def stacked_bar_chart(rng: np.random.Generator) -> tuple[Image.Image, list[Question]]:
    """Bars of two parts: the lower in the bar's colour, the upper in a lighter shade of it."""
    count = int(rng.integers(3, 6))
    names = [str(n) for n in rng.choice(list(COLOURS), size=count, replace=False)]
    totals = distinct_values(rng, count, 4 * STEP, 100)
    lowers = [int(rng.integers(1, total // STEP)) * STEP for total in totals]
    image, draw = blank_chart(rng)
    for (x0, x1), name, total, lower in zip(bar_slots(count, rng), names, totals, lowers, strict=True):
        colour = shade(COLOURS[name], rng)
        draw.rectangle([x0, y_of(lower), x1, BASELINE - 1], fill=colour)
        draw.rectangle([x0, y_of(total), x1, y_of(lower) - 1], fill=tint(colour))
    questions = ask_about_bars(names, totals, rng, "total")
    index = int(rng.integers(count))
    part = str(rng.choice(["lower", "upper"]))
    value = lowers[index] if part == "lower" else totals[index] - lowers[index]
    questions[0] = rng.choice(
        [questions[0], Question(f"What is the {part} part of the {names[index]} bar?", str(value), "value")]
    )
    return image, questions


def line_chart(rng: np.random.Generator) -> tuple[Image.Image, list[Question]]:
    """One series drawn as a line through 4 to 6 points, each marked; points are named by order."""
    count = int(rng.integers(4, 7))
    values = distinct_values(rng, count, 0, 100)
    colour = shade(COLOURS[str(rng.choice(list(COLOURS)))], rng)
    image, draw = blank_chart(rng)
    xs = [LEFT + 4 + (RIGHT - LEFT - 8) * i / (count - 1) for i in range(count)]
    points = [(x, y_of(v)) for x, v in zip(xs, values, strict=True)]
    draw.line(points, fill=colour, width=1)
    for x, y in points:
        draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=colour)
    index = int(rng.integers(count))
    first, second = (int(i) for i in rng.choice(count, size=2, replace=False))
    extreme = str(rng.choice(["highest", "lowest"]))
    pick = max if extreme == "highest" else min
    return image, [
        Question(f"What is the value at the {ORDINALS[index]} point?", str(values[index]), "value"),
        Question(
            f"Which point is the {extreme}?", ORDINALS[pick(range(count), key=lambda i: values[i])], "extreme"
        ),
        Question(
            f"Is the {ORDINALS[first]} point higher than the {ORDINALS[second]} point?",
            "yes" if values[first] > values[second] else "no",
            "compare",
        ),
        Question("How many points are there?", str(count), "count"),
    ]


DRAWERS = {"bar": bar_chart, "stacked bar": stacked_bar_chart, "line": line_chart}


def drawn_chart(rng: np.random.Generator, chart_type: str) -> Chart:
    image, questions = DRAWERS[chart_type](rng)
    return np.asarray(image), chart_type, questions


@functools.cache  # drawn once per process: training, `check` and the server each read them
def builtin_charts(count: int = CHARTS, seed: int = CHART_SEED) -> list[Chart]:
    """The same charts on every machine, each drawn from its own seeded generator; the three
    types take turns."""
    return [
        drawn_chart(np.random.default_rng([seed, index]), CHART_TYPES[index % len(CHART_TYPES)])
        for index in range(count)
    ]


# --- Other sources ---------------------------------------------------------------------------


def dataset_charts(split, config: Config) -> list[Chart]:
    """A Hugging Face split's images with one question each (rows of one image are not merged)."""
    image_column = find_column(split, config.image_column, ("image", "img", "pixel_values"), "image_column")
    question_column = find_column(split, config.question_column, ("question", "query"), "question_column")
    answer_column = find_column(split, config.answer_column, ("answer", "label", "answers"), "answer_column")
    type_column = next(
        (name for name in ("type", "chart_type", "human_or_machine") if name in split.features), None
    )
    charts = []
    for example in split:
        answer = example[answer_column]
        if isinstance(answer, list):  # ChartQA keeps a list of one answer
            answer = answer[0] if answer else ""
        chart_type = str(example[type_column]) if type_column else "chart"
        # Such a question is of no kind the built-in charts' per-kind report counts.
        question = Question(str(example[question_column]), normalise_answer(str(answer)), "other")
        charts.append((np.asarray(example[image_column].convert("RGB")), chart_type, [question]))
    return charts


def normalise_answer(answer: str) -> str:
    """Answers compared as written, less case, surrounding space and a number's trailing zeros."""
    answer = answer.strip().lower()
    number = as_number(answer)
    if number is None:
        return answer
    return str(int(number)) if number == int(number) else repr(number)  # "2.50" and "2.5" are one answer


def as_number(answer: str) -> float | None:
    """An answer's value if it is a number ("1,200", "35%", "-2.5"), else None."""
    cleaned = answer.strip().replace(",", "").removesuffix("%")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


# --- Words, answers and pixels ---------------------------------------------------------------


def words_of(question: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[^\sa-z0-9]", question.lower())


@dataclass
class ChartPreprocessor:
    """A chart -> a normalised float tensor [3, image_size, image_size]; a question -> word ids;
    answers <-> class ids. Saved with each run (preprocessor.json), so serving reads charts and
    questions and names answers exactly as training did."""

    image_size: int
    vocabulary: list[str]  # question words, SPECIAL_WORDS first
    answers: list[str]  # answer classes
    chart_types: list[str]  # names of the chart types the per-type report counts
    max_question_words: int
    mean: list[float] = field(default_factory=lambda: [0.9, 0.9, 0.9])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])

    def __post_init__(self) -> None:
        self.word_ids = {word: index for index, word in enumerate(self.vocabulary)}
        self.answer_ids = {answer: index for index, answer in enumerate(self.answers)}

    def pixels(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.BILINEAR, reducing_gap=2.0)
        values = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 255.0
        return (values - torch.tensor(self.mean)[:, None, None]) / torch.tensor(self.std)[:, None, None]

    def encode_question(self, question: str) -> torch.Tensor:
        """Word ids [max_question_words], padded; words past the limit are dropped."""
        ids = [self.word_ids.get(word, UNKNOWN) for word in words_of(question)][: self.max_question_words]
        return torch.tensor(ids + [PAD] * (self.max_question_words - len(ids)), dtype=torch.long)

    def save(self, run_dir: Path) -> None:
        meta = {k: v for k, v in vars(self).items() if k not in ("word_ids", "answer_ids")}
        (run_dir / "preprocessor.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> ChartPreprocessor:
        return cls(**json.loads((run_dir / "preprocessor.json").read_text()))


def ranked(items: list[str], size: int) -> list[str]:
    """The `size` most frequent items, ties in alphabetical order (the same on every machine)."""
    counts = Counter(items)
    return sorted(counts, key=lambda item: (-counts[item], item))[:size]


class ChartQuestions(torch.utils.data.Dataset):
    """Every question of every chart as ((pixels, question ids), [answer id, type id, kind id]).
    An answer outside the answer vocabulary gets id -1: training skips it, evaluation counts it
    wrong. Training charts have their light varied."""

    def __init__(self, charts: list[Chart], preprocessor: ChartPreprocessor, augment: bool = False):
        self.charts = charts
        self.preprocessor = preprocessor
        self.augment = augment
        self.index = [(c, q) for c, (_, _, questions) in enumerate(charts) for q in range(len(questions))]

    def __len__(self) -> int:
        return len(self.index)

    def image(self, index: int) -> Image.Image:
        return Image.fromarray(self.charts[self.index[index][0]][0])

    def question(self, index: int) -> Question:
        chart, question = self.index[index]
        return self.charts[chart][2][question]

    def chart_type(self, index: int) -> str:
        return self.charts[self.index[index][0]][1]

    def __getitem__(self, index: int) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        question, prep = self.question(index), self.preprocessor
        pixels = prep.pixels(self.image(index))
        if self.augment:
            pixels = pixels * (0.9 + 0.2 * torch.rand(())) + 0.1 * (torch.rand(3, 1, 1) - 0.5)
        chart_type = self.chart_type(index)
        targets = torch.tensor(
            [
                prep.answer_ids.get(question.answer, -1),
                prep.chart_types.index(chart_type) if chart_type in prep.chart_types else -1,
                QUESTION_KINDS.index(question.kind) if question.kind in QUESTION_KINDS else -1,
            ]
        )
        return (pixels, prep.encode_question(question.text)), targets


@dataclass
class TaskData:
    train: ChartQuestions
    val: ChartQuestions
    preprocessor: ChartPreprocessor


def read_charts(config: Config) -> tuple[list[Chart], list[Chart]]:
    """Training and validation charts with their questions: a chart's questions all go to one side."""
    if config.dataset == "builtin":
        charts = builtin_charts()
        order = np.random.default_rng(config.seed).permutation(len(charts))
        held_out = max(1, round(config.val_fraction * len(charts)))
        return [charts[i] for i in sorted(order[held_out:])], [charts[i] for i in sorted(order[:held_out])]
    train_split, val_split = train_val_split(read_dataset(config.dataset), config)
    return dataset_charts(train_split, config), dataset_charts(val_split, config)


def split_contents(config: Config) -> tuple[Iterator[bytes], Iterator[bytes]]:
    """What identifies each training and validation chart (its pixels), for counting validation
    charts that are copies of training ones."""
    train, val = read_charts(config)
    return (image.tobytes() for image, _, _ in train), (image.tobytes() for image, _, _ in val)


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the source, split it, and build (or load) the vocabularies and the preprocessing."""
    train, val = read_charts(config)
    if not train:
        raise ProjectError("the training split has no charts")
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        questions = [q for _, _, questions in train for q in questions]
        words = ranked(
            [w for q in questions for w in words_of(q.text)], config.vocab_size - len(SPECIAL_WORDS)
        )
        types = [t for t in CHART_TYPES if any(chart_type == t for _, chart_type, _ in train)]
        types += sorted({chart_type for _, chart_type, _ in train} - set(types))
        preprocessor = ChartPreprocessor(
            image_size=config.image_size,
            vocabulary=SPECIAL_WORDS + words,
            answers=ranked([q.answer for q in questions], config.answer_vocab_size),
            chart_types=types,
            max_question_words=config.max_question_words,
        )
    return TaskData(
        train=ChartQuestions(train, preprocessor, augment=True),
        val=ChartQuestions(val, preprocessor),
        preprocessor=preprocessor,
    )


def load_preprocessor(run_dir: Path) -> ChartPreprocessor:
    return ChartPreprocessor.load(run_dir)
