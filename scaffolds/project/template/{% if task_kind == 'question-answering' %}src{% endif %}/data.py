"""Questions and their passages in, (token ids, answer position) windows out: the sources, the
split, the tokenization, and the sliding windows over passages longer than the model reads.

Where the questions come from (config.dataset):
  builtin      product manuals generated here (the same on every machine): 150 devices, each
               with five sections (specifications, installation, maintenance, troubleshooting,
               warranty) of facts among boilerplate, and questions on each fact. A manual leaves
               out some facts, and the questions on those have no answer in it: the model must
               abstain. Manuals are split by device, so no validation question is about a device
               training saw: the score says whether the model finds an answer by reading, not by
               remembering
  a file       .json / .jsonl / .parquet in SQuAD's layout: question, context, answers
               ({"text": [...], "answer_start": [...]}; empty lists: no answer), title optional
  a folder     a dataset saved with `save_to_disk`, or a folder of such data files
  a hub name   any Hugging Face dataset in that layout (squad, squad_v2; needs the network once)

Each question is read with its passage as `[CLS] question [SEP] title [SEP] passage [SEP]` (the
title, where the data has one, says what the passage is about: for a manual's section, the
device, which the passage itself seldom names). A passage longer
than fits is read in overlapping windows (a quarter of a window shared with the next), so every
answer lies whole inside at least one of them. A window's target is where the answer starts and
ends in it, or position 0 (the [CLS] token) where it holds no answer: SQuAD 2.0's convention.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from config import Config, ProjectError
from loading import VALIDATION_SPLITS, find_column, read_dataset
from text_encoding import SavedTokenizer, cached_wordpiece

if TYPE_CHECKING:  # imported where a dataset is built: `predict` and `serve` start without it
    from datasets import Dataset, DatasetDict

QUESTION_COLUMNS = ("question", "query")
CONTEXT_COLUMNS = ("context", "passage", "section")
ANSWER_COLUMNS = ("answers",)
TITLE_COLUMNS = ("title", "section_title")
MAX_QUESTION_SHARE = 0.3  # of a window: longer questions are cut
MAX_TITLE_SHARE = 0.15  # of a window: longer titles are cut; the rest is the passage's
WINDOW_OVERLAP_SHARE = 0.25  # of a window's passage tokens, shared with the next window
PASSAGES_FILE = "passages.json"  # in a run: the passages retrieval searches at serve time
# Each window's targets: a row of these columns (see QuestionWindows).
START, END, QUESTION, OFFSET, CONTEXT_START, LENGTH, GOLD_START, GOLD_END = range(8)


# --- The built-in manuals ----------------------------------------------------------------------

BRANDS = [
    "Aurora",
    "Nimbus",
    "Vela",
    "Orion",
    "Kestrel",
    "Lumen",
    "Tundra",
    "Halcyon",
    "Cobalt",
    "Juniper",
    "Meridian",
    "Solace",
]
DEVICES = [
    "kettle",
    "router",
    "air purifier",
    "coffee grinder",
    "robot vacuum",
    "space heater",
    "label printer",
    "thermostat",
    "dehumidifier",
    "projector",
    "bread maker",
    "desk fan",
]


@dataclass(frozen=True)
class Fact:
    """One thing a manual may say: where, in which words, and the questions that ask for it."""

    name: str
    section: str
    statements: tuple[str, ...]  # {value} is the answer; {device} and {name} as in the manual
    questions: tuple[str, ...]


FACTS = (
    Fact(
        "weight",
        "Specifications",
        ("The {name} weighs {value}.", "Its weight without accessories is {value}."),
        ("How much does the {name} weigh?", "What is the weight of the {name}?"),
    ),
    Fact(
        "power",
        "Specifications",
        ("It draws {value} at full load.", "Rated power consumption is {value}."),
        ("How much power does the {name} draw?", "What is the power consumption of the {name}?"),
    ),
    Fact(
        "dimensions",
        "Specifications",
        ("The unit measures {value}.", "Its dimensions are {value}."),
        ("What are the dimensions of the {name}?", "How big is the {name}?"),
    ),
    Fact(
        "noise",
        "Specifications",
        ("At the highest setting it produces {value} of noise.", "Noise level at maximum speed: {value}."),
        ("How loud is the {name} at its highest setting?", "What is the noise level of the {name}?"),
    ),
    Fact(
        "clearance",
        "Installation",
        (
            "Leave at least {value} of free space around the {device}.",
            "Keep {value} of clearance on every side.",
        ),
        ("How much clearance does the {name} need?", "How much free space should be left around the {name}?"),
    ),
    Fact(
        "port",
        "Installation",
        (
            "Connect the power adapter to the port marked {value}.",
            "The adapter plugs into the socket labelled {value}.",
        ),
        (
            "Which port does the power adapter of the {name} connect to?",
            "Where does the adapter of the {name} plug in?",
        ),
    ),
    Fact(
        "app",
        "Installation",
        ("Pair the {device} with the {value} app before first use.", "Setup is finished in the {value} app."),
        ("Which app is used to set up the {name}?", "What app does the {name} pair with?"),
    ),
    Fact(
        "filter",
        "Maintenance",
        ("Replace the filter every {value}.", "The filter should be changed every {value}."),
        ("How often should the filter of the {name} be replaced?", "When does the {name} need a new filter?"),
    ),
    Fact(
        "cleaning",
        "Maintenance",
        ("Clean the housing with {value} only.", "Use {value} to wipe the outside of the {device}."),
        (
            "What should the housing of the {name} be cleaned with?",
            "How do I clean the outside of the {name}?",
        ),
    ),
    Fact(
        "reset",
        "Troubleshooting",
        (
            "To restore factory settings, hold the reset button for {value}.",
            "A factory reset needs the reset button held for {value}.",
        ),
        (
            "How long must the reset button of the {name} be held?",
            "How do I restore the factory settings of the {name}?",
        ),
    ),
    Fact(
        "red_light",
        "Troubleshooting",
        ("If the status light blinks red, {value}.", "A blinking red light means you should {value}."),
        (
            "What should I do if the status light of the {name} blinks red?",
            "The {name} is blinking red; what should I do?",
        ),
    ),
    Fact(
        "error",
        "Troubleshooting",
        ("Error {code} means {value}.", "Code {code} on the display indicates {value}."),
        ("What does error {code} mean on the {name}?", "The {name} shows code {code}; what does it mean?"),
    ),
    Fact(
        "warranty",
        "Warranty",
        (
            "The {name} is covered by a warranty of {value} from the date of purchase.",
            "Warranty period: {value}.",
        ),
        ("How long is the warranty of the {name}?", "How long is the {name} covered by warranty?"),
    ),
    Fact(
        "phone",
        "Warranty",
        ("Warranty claims are handled at {value}.", "For repairs under warranty call {value}."),
        (
            "What number handles warranty claims for the {name}?",
            "Which phone number should I call for repairs of the {name}?",
        ),
    ),
)
SECTIONS = ("Specifications", "Installation", "Maintenance", "Troubleshooting", "Warranty")
ACTIONS = (
    "unplug the unit for one minute",
    "check that the water tank is seated",
    "clear the air intake",
    "contact customer support",
    "let the motor cool down",
    "reconnect to your wireless network",
    "replace the fuse in the plug",
    "empty the collection bin",
)
FAULTS = (
    "the motor is overheating",
    "the lid is open",
    "the sensor is blocked",
    "the fan has stalled",
    "the firmware update failed",
    "the supply voltage is too low",
    "the water level is low",
    "the filter is missing",
)
CLEANERS = (
    "a dry microfiber cloth",
    "mild soapy water",
    "an alcohol-free wipe",
    "a soft brush",
    "a damp sponge",
)
BOILERPLATE = (
    "Read all instructions before using the {device}.",
    "Keep this manual for future reference.",
    "Illustrations may differ from your model.",
    "Do not immerse the {device} in water.",
    "Only use accessories approved by the manufacturer.",
    "Children should be supervised near the {device}.",
    "Dispose of the packaging responsibly.",
    "Unplug the {device} before any maintenance.",
    "Place the {device} on a flat, stable surface.",
    "Do not cover the ventilation openings.",
    "Switch the {device} off when it is not in use.",
    "Store the {device} in a dry place.",
    "The manufacturer is not liable for damage caused by misuse.",
    "Check the cable for damage regularly.",
    "Never pull the {device} by its cable.",
    "Use the {device} indoors only.",
    "Keep the {device} away from heat sources and direct sunlight.",
    "Do not open the housing yourself.",
    "Repairs must be carried out by qualified personnel.",
    "The {device} is intended for household use.",
    "Make sure the supply voltage matches the rating label.",
    "Let the {device} reach room temperature after transport.",
    "Remove all packaging material before first use.",
    "Keep pets away from the {device} while it runs.",
    "Do not operate the {device} with a damaged plug.",
    "Save the receipt as proof of purchase.",
)
DEVICES_PER_MANUAL_SET = 150
FACT_PRESENT = 0.8  # the share of facts a manual states; questions on the rest have no answer
NEGATIVES = 0.5  # the share of training questions also asked of a section that cannot answer them
NO_ANSWER = {"text": [], "answer_start": []}
GENERATOR_SEED = 2024  # the built-in manuals never depend on config.seed: one corpus everywhere


def fact_value(fact: str, brand: str, rng: random.Random) -> str:
    """A value for `fact`, as a manual writes it."""
    if fact == "weight":
        return f"{rng.uniform(0.5, 14):.1f} kg"
    if fact == "power":
        return f"{rng.choice([15, 25, 40, 60, 90, 150, 400, 800, 1200, 2000])} W"
    if fact == "dimensions":
        return " x ".join(str(rng.randint(8, 60)) for _ in range(3)) + " cm"
    if fact == "noise":
        return f"{rng.randint(28, 68)} dB"
    if fact == "clearance":
        return f"{rng.choice([5, 10, 15, 20, 30, 50])} cm"
    if fact == "port":
        return rng.choice(["DC IN", "PWR", "AC", "USB-C", "POWER"]) + f" {rng.randint(1, 4)}"
    if fact == "app":
        return f"{brand} {rng.choice(['Home', 'Link', 'Connect', 'Life', 'Hub'])}"
    if fact == "filter":
        return rng.choice(
            [f"{rng.randint(2, 12)} months", f"{rng.randint(2, 8)} weeks", f"{rng.randint(2, 9)}00 hours"]
        )
    if fact == "cleaning":
        return rng.choice(CLEANERS)
    if fact == "reset":
        return f"{rng.choice([3, 5, 8, 10, 15, 20, 30])} seconds"
    if fact == "red_light":
        return rng.choice(ACTIONS)
    if fact == "error":
        return rng.choice(FAULTS)
    if fact == "warranty":
        return rng.choice(
            [f"{rng.choice([6, 12, 18, 24, 36])} months", f"{rng.randint(1, 5)} years", "90 days"]
        )
    return f"+1 800 555 {rng.randint(0, 9999):04d}"  # phone


def write_manual(name: str, device: str, brand: str, rng: random.Random) -> tuple[dict[str, str], list[dict]]:
    """A device's manual: its sections' texts, and questions over them as SQuAD rows (title,
    context, question, answers), two phrasings of the question on each fact, answered or not."""
    present = {fact.name: rng.random() < FACT_PRESENT for fact in FACTS}
    codes = rng.sample([f"E{n}" for n in range(1, 10)], 2)  # the code the manual explains, and another
    texts: dict[str, str] = {}
    answers: dict[str, tuple[str, int]] = {}
    for section in SECTIONS:
        sentences = [(None, sentence) for sentence in rng.sample(BOILERPLATE, rng.randint(4, 12))]
        for fact in FACTS:
            if fact.section == section and present[fact.name]:
                position = rng.randint(0, len(sentences))
                sentences.insert(position, (fact, rng.choice(fact.statements)))
        text = ""
        for fact, template in sentences:
            text += " " if text else ""
            value = fact_value(fact.name, brand, rng) if fact else ""
            filled = template.format(name=name, device=device, code=codes[0], value="\0")
            if fact:
                answers[fact.name] = (value, len(text) + filled.index("\0"))
            text += filled.replace("\0", value)
        texts[section] = text
    rows = []
    for fact in FACTS:
        for phrasing in fact.questions:
            # A question on an error code may name one the manual does not explain: no answer,
            # though an explanation of another code is right there.
            code = rng.choice(codes)
            value, start = answers.get(fact.name, ("", -1))
            if fact.name == "error" and code != codes[0]:
                value, start = "", -1
            rows.append(
                {
                    "title": f"{name}: {fact.section}",
                    "context": texts[fact.section],
                    "question": phrasing.format(name=name, code=code),
                    "answers": {"text": [value] if value else [], "answer_start": [start] if value else []},
                    "device": name,
                }
            )
    return texts, rows


def wrong_sections(rows: list[dict], manuals: dict[str, dict[str, str]], rng: random.Random) -> list[dict]:
    """A share NEGATIVES of the questions asked again of another section of the same manual, which
    cannot answer them. Retrieval finds the right manual by the device's name, but not always the
    right section; a reader trained on these abstains on a wrong one instead of answering from it."""
    negatives = []
    for row in rows:
        if rng.random() >= NEGATIVES:
            continue
        device, section = row["title"].split(": ")
        other = rng.choice([name for name in SECTIONS if name != section])
        negatives.append(
            row | {"title": f"{device}: {other}", "context": manuals[device][other], "answers": NO_ANSWER}
        )
    return negatives


def product_manuals(val_fraction: float = 0.2) -> DatasetDict:
    """The built-in questions: DEVICES_PER_MANUAL_SET manuals, split by device. Validation asks
    each question of its own section only, so its scores are SQuAD's; training also asks some of
    the wrong one (wrong_sections)."""
    from datasets import Dataset, DatasetDict, Features, Sequence, Value

    rng = random.Random(GENERATOR_SEED)
    names: list[tuple[str, str, str]] = []
    while len(names) < DEVICES_PER_MANUAL_SET:
        brand, device = rng.choice(BRANDS), rng.choice(DEVICES)
        name = f"{brand} {rng.choice('KLMRSTVX')}{rng.randint(10, 99)} {device}"
        if name not in (known for known, _, _ in names):
            names.append((name, device, brand))
    val_devices = round(len(names) * val_fraction)
    features = Features(
        {
            "title": Value("string"),
            "context": Value("string"),
            "question": Value("string"),
            "answers": {"text": Sequence(Value("string")), "answer_start": Sequence(Value("int32"))},
            "device": Value("string"),
        }
    )
    splits: dict[str, list[dict]] = {"train": [], "validation": []}
    train_manuals: dict[str, dict[str, str]] = {}
    for index, (name, device, brand) in enumerate(names):
        texts, rows = write_manual(name, device, brand, rng)
        split = "validation" if index < val_devices else "train"
        splits[split] += rows
        if split == "train":
            train_manuals[name] = texts
    splits["train"] += wrong_sections(splits["train"], train_manuals, rng)
    return DatasetDict({split: Dataset.from_list(rows, features=features) for split, rows in splits.items()})


# --- Columns of other sources ------------------------------------------------------------------


@dataclass
class Columns:
    question: str
    context: str
    answers: str
    title: str | None


def find_columns(dataset: Dataset, config: Config) -> Columns:
    question = find_column(dataset, config.question_column, QUESTION_COLUMNS, "question_column")
    context = find_column(dataset, config.context_column, CONTEXT_COLUMNS, "context_column")
    answers = next((name for name in ANSWER_COLUMNS if name in dataset.column_names), None)
    if answers is None:
        raise ProjectError(
            f"no answers column among {', '.join(dataset.column_names)}; give each question SQuAD's"
            ' answers: {"text": [...], "answer_start": [...]} (empty lists: no answer)'
        )
    title = next((name for name in TITLE_COLUMNS if name in dataset.column_names), None)
    return Columns(question, context, answers, title)


def split_by_passage(source: Dataset, config: Config, context_column: str) -> tuple[Dataset, Dataset]:
    """A seeded split of the passages (val_fraction of them), each with all its questions: a
    passage on both sides would score the model on text it trained on."""
    passages = sorted(set(source[context_column]))
    random.Random(config.seed).shuffle(passages)
    held_out = set(passages[: max(1, round(len(passages) * config.val_fraction))])
    in_val = [context in held_out for context in source[context_column]]
    val = source.select([i for i, held in enumerate(in_val) if held])
    train = source.select([i for i, held in enumerate(in_val) if not held])
    if len(train) == 0:
        raise ProjectError("the dataset has a single passage; it needs several to hold some out")
    return train, val


def read_splits(config: Config) -> tuple[Dataset, Dataset, Columns]:
    """The training and validation questions and their columns."""
    from datasets import DatasetDict

    source: Dataset | DatasetDict = (
        product_manuals(config.val_fraction) if config.dataset == "builtin" else read_dataset(config.dataset)
    )
    if isinstance(source, DatasetDict):
        train = source["train"]
        val = next((source[name] for name in VALIDATION_SPLITS if name in source), None)
    else:
        train, val = source, None
    columns = find_columns(train, config)
    if val is None:
        train, val = split_by_passage(train, config, columns.context)
    return train, val, columns


def split_contents(config: Config) -> tuple[list[str], list[str]]:
    """The passage of each training and validation question: a validation question over a passage
    that training also read counts as leaked."""
    train, val, columns = read_splits(config)
    return list(train[columns.context]), list(val[columns.context])


def distinct_passages(train: Dataset, val: Dataset, columns: Columns) -> list[tuple[str, str]]:
    """(title, text) of each distinct passage of both splits, in the order first seen: what
    retrieval searches when a question comes without its passage."""
    passages: dict[tuple[str, str], None] = {}  # a dict, not a set: it keeps the order
    for split in (train, val):
        titles = split[columns.title] if columns.title else [""] * len(split)
        for title, text in zip(titles, split[columns.context], strict=True):
            passages.setdefault((title or "", text), None)
    return list(passages)


# --- Windows -----------------------------------------------------------------------------------


@dataclass
class Question:
    """A question with its passage, the passage's title, and the answer if it has one."""

    question: str
    context: str
    title: str = ""
    answer: str = ""
    answer_start: int = -1


def read_questions(split: Dataset, columns: Columns) -> list[Question]:
    questions = []
    for row in split:
        answers = row[columns.answers] or {}
        texts, starts = answers.get("text") or [], answers.get("answer_start") or []
        answer, start = (texts[0], int(starts[0])) if texts and starts else ("", -1)
        if answer and row[columns.context][start : start + len(answer)] != answer:
            raise ProjectError(
                f"an answer of {columns.answers!r} does not occur at its answer_start: {answer!r}"
                f" in the passage of {row[columns.question]!r}"
            )
        title = row[columns.title] if columns.title else ""
        questions.append(Question(row[columns.question], row[columns.context], title or "", answer, start))
    return questions


@dataclass
class Window:
    """One stretch of a passage with its question, as the model reads it."""

    input_ids: list[int]
    context_start: int  # where the passage's tokens begin in input_ids
    offset: int  # the index, among the passage's tokens, of the window's first one
    length: int  # the passage's tokens in this window


@dataclass
class EncodedPassage:
    windows: list[Window]
    char_spans: list[tuple[int, int]]  # each passage token's characters in the passage


@dataclass
class ReadingPreprocessor(SavedTokenizer):
    """A question and its passage -> windows of `[CLS] question [SEP] title [SEP] passage part
    [SEP]` padded to max_length, and an answer's characters -> its first and last token in the
    passage. The labels are the two things the model points at: start and end.

    It also carries the data's passages (build_data sets them) and saves them with the run
    (PASSAGES_FILE), so that serving retrieves from them without reading the data again."""

    passages: list[tuple[str, str]] | None = None  # (title, text); None: not read from the data

    def save(self, run_dir: Path) -> None:
        super().save(run_dir)
        if self.passages is not None:
            (run_dir / PASSAGES_FILE).write_text(json.dumps(self.passages) + "\n")

    @property
    def cls_id(self) -> int:
        return (
            self.tokenizer.cls_token_id
            if self.tokenizer.cls_token_id is not None
            else self.tokenizer.bos_token_id
        )

    @property
    def sep_id(self) -> int:
        return (
            self.tokenizer.sep_token_id
            if self.tokenizer.sep_token_id is not None
            else self.tokenizer.eos_token_id
        )

    def encode(self, question: str, context: str, title: str = "") -> EncodedPassage:
        question_ids = self.tokens(question, MAX_QUESTION_SHARE)
        title_ids = self.tokens(title, MAX_TITLE_SHARE)
        passage = self.tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
        passage_ids, char_spans = passage["input_ids"], [tuple(span) for span in passage["offset_mapping"]]
        head = [self.cls_id, *question_ids, self.sep_id, *title_ids, *([self.sep_id] if title_ids else [])]
        room = self.max_length - len(head) - 1
        step = max(1, room - int(room * WINDOW_OVERLAP_SHARE))
        windows, offset = [], 0
        while True:
            part = passage_ids[offset : offset + room]
            ids = [*head, *part, self.sep_id]
            windows.append(
                Window(ids + [self.pad_id] * (self.max_length - len(ids)), len(head), offset, len(part))
            )
            if offset + room >= len(passage_ids):
                return EncodedPassage(windows, char_spans)
            offset += step

    def tokens(self, text: str, share: float) -> list[int]:
        """The token ids of `text`, at most `share` of a window of them."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"][: int(self.max_length * share)]

    @staticmethod
    def answer_tokens(char_spans: list[tuple[int, int]], start: int, text: str) -> tuple[int, int]:
        """The first and last passage token of the answer at character `start`; (-1, -1) if none."""
        if not text:
            return -1, -1
        end = start + len(text)
        inside = [i for i, (first, last) in enumerate(char_spans) if first < end and last > start]
        return (inside[0], inside[-1]) if inside else (-1, -1)


def load_preprocessor(run_dir: Path) -> ReadingPreprocessor:
    return ReadingPreprocessor.load(run_dir)


def load_passages(run_dir: Path) -> list[tuple[str, str]] | None:
    """The passages a run saved when it was trained, or None for a run from before runs saved them."""
    path = run_dir / PASSAGES_FILE
    if not path.exists():
        return None
    return [(title, text) for title, text in json.loads(path.read_text())]


class QuestionWindows(torch.utils.data.Dataset):
    """A split's questions cut into windows once, up front, as (token ids, targets) pairs. A
    window's targets: where the answer starts and ends in it (0, 0: not in it), which question it
    belongs to, where its passage part starts among the passage's tokens and in the window, how
    many passage tokens it holds, and the answer's first and last passage token (-1: no answer).
    Metrics put a question's windows back together from these."""

    def __init__(self, questions: list[Question], preprocessor: ReadingPreprocessor):
        self.questions = questions
        ids, targets = [], []
        for number, question in enumerate(questions):
            encoded = preprocessor.encode(question.question, question.context, question.title)
            first, last = preprocessor.answer_tokens(
                encoded.char_spans, question.answer_start, question.answer
            )
            for window in encoded.windows:
                inside = first >= window.offset and last < window.offset + window.length and first >= 0
                shift = window.context_start - window.offset
                start, end = (first + shift, last + shift) if inside else (0, 0)
                ids.append(window.input_ids)
                targets.append(
                    [start, end, number, window.offset, window.context_start, window.length, first, last]
                )
        self.input_ids = torch.tensor(ids, dtype=torch.long)
        self.targets = torch.tensor(targets, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.input_ids[index], self.targets[index]


@dataclass
class TaskData:
    train: QuestionWindows
    val: QuestionWindows
    preprocessor: ReadingPreprocessor


def wordpiece_for_reading(texts: list[str], vocab_size: int) -> PreTrainedTokenizerBase:
    """The cached WordPiece tokenizer of these texts, with [CLS] and [SEP] to frame a window."""
    tokenizer = cached_wordpiece(texts, vocab_size)
    tokenizer.add_special_tokens({"cls_token": "[CLS]", "sep_token": "[SEP]"})
    return tokenizer


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the source, split it, train (or load) the tokenizer, cut both splits into windows."""
    train, val, columns = read_splits(config)
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        if config.model_name:
            tokenizer = AutoTokenizer.from_pretrained(config.model_name)
            if not tokenizer.is_fast:  # only fast tokenizers give each token's characters
                raise ProjectError(f"{config.model_name} has no fast tokenizer; answer offsets need one")
        else:
            texts = sorted({*train[columns.context], *(train[columns.title] if columns.title else [])})
            tokenizer = wordpiece_for_reading([*texts, *train[columns.question]], config.vocab_size)
        preprocessor = ReadingPreprocessor(tokenizer, ["start", "end"], config.max_length)
    # Also when resuming: a run from before runs saved their passages gets them when it saves.
    preprocessor.passages = distinct_passages(train, val, columns)
    return TaskData(
        train=QuestionWindows(read_questions(train, columns), preprocessor),
        val=QuestionWindows(read_questions(val, columns), preprocessor),
        preprocessor=preprocessor,
    )
