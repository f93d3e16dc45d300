"""Notes in, (token ids, word tags) examples out: the sources, the split, the tokenization, and the
alignment of word tags to word pieces.

Where the notes come from (config.dataset):
  builtin      about 2,300 short clinical notes generated here from templates, the same on every
               machine, with drugs, doses and conditions tagged (BIO). The notes of one patient stay
               in one split, and a fifth of the drug and condition names occur only in validation
               notes, so the score says whether the model recognises an entity from its context
               and its shape (-pril, -olol, -statin ...), not whether it has seen the name before
  a file       .json / .jsonl / .parquet with a column of words and a column of tags per example
  a folder     a dataset saved with `save_to_disk`, or a folder of such data files
  a hub name   any Hugging Face token-classification dataset in CoNLL-2003's layout (`tokens`,
               `ner_tags` with B-/I- class names; needs the network once)

Words are split off a text by WORD (numbers, words, single punctuation marks), the same way for
the built-in notes, for serving and for `runner.py predict`. Each word's tag is trained and scored
on its first word piece; its other pieces and the padding are ignored (IGNORE).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import AutoTokenizer

from config import Config, ProjectError
from loading import find_column, read_dataset, train_val_split
from text_encoding import SavedTokenizer, cached_wordpiece

if TYPE_CHECKING:  # imported where a dataset is built: `predict` and `serve` start 0.9 s sooner
    from datasets import Dataset, DatasetDict

WORD = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|\S")
IGNORE = -100  # the tag of word pieces that are not scored (cross_entropy's ignore_index)
WORD_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "tags", "labels")
ENTITY_TYPES = ("DRUG", "DOSE", "CONDITION")
BUILTIN_TAGS = ["O", *(f"{edge}-{kind}" for kind in ENTITY_TYPES for edge in ("B", "I"))]


def split_words(text: str) -> list[re.Match[str]]:
    """The words of `text`, with where each starts and ends."""
    return list(WORD.finditer(text))


def join_words(words: list[str]) -> str:
    """Words back into a text that split_words splits into the same words: spaces between them,
    none before closing punctuation ("Dr. Kim, 20 mg.")."""
    return re.sub(r" (?=[.,;:!?)%])|(?<=\() ", "", " ".join(words))


# --- The built-in notes ------------------------------------------------------------------------

# Names written as prose, space- or bar-separated: a literal of 90 quoted names reads worse.
DRUGS = (  # noqa: SIM905
    "lisinopril enalapril ramipril benazepril quinapril metoprolol atenolol propranolol bisoprolol "
    "nadolol atorvastatin simvastatin rosuvastatin pravastatin lovastatin losartan valsartan "
    "irbesartan candesartan telmisartan omeprazole pantoprazole lansoprazole esomeprazole "
    "amoxicillin ampicillin penicillin azithromycin clarithromycin erythromycin ciprofloxacin "
    "levofloxacin moxifloxacin metformin glipizide insulin warfarin apixaban rivaroxaban heparin "
    "aspirin ibuprofen naproxen acetaminophen prednisone furosemide hydrochlorothiazide amlodipine "
    "nifedipine diltiazem sertraline fluoxetine citalopram escitalopram gabapentin levothyroxine "
    "albuterol montelukast tramadol ondansetron"
).split()
CONDITIONS = (  # noqa: SIM905
    "hypertension|type 2 diabetes|atrial fibrillation|heart failure|chronic kidney disease|asthma|"
    "COPD|pneumonia|urinary tract infection|major depressive disorder|hypothyroidism|"
    "hyperlipidemia|gastroesophageal reflux disease|migraine|osteoarthritis|cellulitis|"
    "deep vein thrombosis|generalized anxiety disorder|insomnia|epilepsy|rheumatoid arthritis|gout|"
    "iron deficiency anemia|acute sinusitis|bronchitis|coronary artery disease|peripheral neuropathy|"
    "nausea|back pain|angina"
).split("|")
AMOUNTS = "0.5 1 2 2.5 5 10 12.5 20 25 40 50 81 100 250 500 875".split()  # noqa: SIM905
UNITS = ("mg", "mg", "mg", "mcg", "g", "units", "mL")
FREQUENCIES = (
    "daily",
    "twice daily",
    "three times a day",
    "at bedtime",
    "every 8 hours",
    "as needed",
    "weekly",
)
ROUTES = ("by mouth", "orally", "IV", "subcutaneously", "PO")
DOCTORS = ("Patel", "Nguyen", "Garcia", "Smith", "Okafor", "Kim", "Rossi", "Cohen")

# One sentence each; {drug}, {dose} and {condition}/{condition2} are entities, the rest context.
SENTENCES = (
    "Patient with {condition} started on {drug} {dose} {freq}.",
    "Continue {drug} {dose} {route} {freq} for {condition}.",
    "History of {condition} and {condition2}.",
    "{drug} increased to {dose} because of poorly controlled {condition}.",
    "Stopped {drug} after she developed {condition}.",
    "Allergic to {drug}.",
    "Denies {condition}.",
    "Prescribed {dose} of {drug} {freq} for {days} days.",
    "Reports taking {drug} {dose} {freq} for {condition}.",
    "Known {condition}, on {drug}.",
    "He was admitted with {condition} and given {drug} {dose} {route}.",
    "Switch {drug} to {drug2} {dose} {freq}.",
    "{condition} is stable on {drug} {dose}.",
    "Follow up with Dr. {doctor} in {days} weeks.",
    "Vital signs stable, BP {systolic}/{diastolic}, HR {pulse}.",
    "No acute distress.",
    "Labs reviewed with the patient.",
)
ENTITY_SLOTS = {
    "drug": "DRUG",
    "drug2": "DRUG",
    "dose": "DOSE",
    "condition": "CONDITION",
    "condition2": "CONDITION",
}
SLOT = re.compile(r"\{(\w+)\}")
NOTES_PER_PATIENT = 5
PATIENTS = 500
GENERATOR_SEED = 2024  # the built-in notes never depend on config.seed: one corpus everywhere


@dataclass
class Names:
    """The drug and condition names one split's notes draw from."""

    drugs: list[str]
    conditions: list[str]


def slot_value(slot: str, names: Names, rng: random.Random) -> str:
    if slot.startswith("drug"):
        drug = rng.choice(names.drugs)
        return drug.capitalize() if rng.random() < 0.2 else drug
    if slot.startswith("condition"):
        return rng.choice(names.conditions)
    if slot == "dose":
        unit = rng.choice(UNITS)
        amount = rng.choice(AMOUNTS)
        return f"{amount}{unit}" if rng.random() < 0.2 else f"{amount} {unit}"  # "20mg" too
    choices = {
        "freq": FREQUENCIES, "route": ROUTES, "doctor": DOCTORS, "days": ("3", "5", "7", "10", "14"),
        "systolic": ("118", "126", "134", "142"), "diastolic": ("72", "80", "88"),
        "pulse": ("64", "72", "88"),
    }  # fmt: skip
    return rng.choice(choices[slot])


def write_note(names: Names, rng: random.Random) -> tuple[str, list[tuple[int, int, str]]]:
    """A note of one to three sentences, and the (start, end, type) character span of each entity."""
    text, spans = "", []
    for template in rng.sample(SENTENCES, rng.randint(1, 3)):
        if text:
            text += " "
        position = 0
        for match in SLOT.finditer(template):
            text += template[position : match.start()]
            value = slot_value(match.group(1), names, rng)
            if match.start() == 0:
                value = value[0].upper() + value[1:]
            if match.group(1) in ENTITY_SLOTS:
                spans.append((len(text), len(text) + len(value), ENTITY_SLOTS[match.group(1)]))
            text += value
            position = match.end()
        text += template[position:]
    return text, spans


def word_tags(text: str, spans: list[tuple[int, int, str]]) -> tuple[list[str], list[str]]:
    """The words of `text` and their BIO tags."""
    words, tags = [], []
    for match in split_words(text):
        inside = next((span for span in spans if span[0] <= match.start() < span[1]), None)
        tags.append("O" if inside is None else f"{'B' if match.start() == inside[0] else 'I'}-{inside[2]}")
        words.append(match.group())
    return words, tags


def clinical_notes(val_fraction: float = 0.2) -> DatasetDict:
    """The built-in corpus: PATIENTS patients with NOTES_PER_PATIENT notes each, split by patient.

    Validation patients' notes also use the held-out names (every fifth drug and condition),
    which no training note contains. A note written twice is kept once, so no validation note is
    a copy of a training one.
    """
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    rng = random.Random(GENERATOR_SEED)
    held_out = Names(DRUGS[4::5], CONDITIONS[4::5])
    seen = Names(
        [d for d in DRUGS if d not in held_out.drugs], [c for c in CONDITIONS if c not in held_out.conditions]
    )
    every = Names(DRUGS, CONDITIONS)
    val_patients = round(PATIENTS * val_fraction)
    features = Features(
        {
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(ClassLabel(names=BUILTIN_TAGS)),
            "patient": Value("int32"),
        }
    )
    splits: dict[str, dict[str, list]] = {
        name: {"tokens": [], "ner_tags": [], "patient": []} for name in ("train", "validation")
    }
    written: set[str] = set()
    for patient in range(PATIENTS):
        split = "validation" if patient < val_patients else "train"
        for _ in range(NOTES_PER_PATIENT):
            text, spans = write_note(every if split == "validation" else seen, rng)
            if text in written:
                continue
            written.add(text)
            words, tags = word_tags(text, spans)
            splits[split]["tokens"].append(words)
            splits[split]["ner_tags"].append([BUILTIN_TAGS.index(tag) for tag in tags])
            splits[split]["patient"].append(patient)
    return DatasetDict(
        {name: Dataset.from_dict(columns, features=features) for name, columns in splits.items()}
    )


# --- Columns and tags of other sources ---------------------------------------------------------


def tag_names(train: Dataset, val: Dataset, tag_column: str) -> tuple[list[str], Dataset, Dataset]:
    """The tag names (B-X/I-X/O), with both splits' tags as ids of them. Tags stored as strings
    become ids in sorted order ("O" first); ids without class names cannot be read as spans."""
    from datasets import ClassLabel

    feature = train.features[tag_column]
    inner = getattr(feature, "feature", None)
    if isinstance(inner, ClassLabel):
        return list(inner.names), train, val
    if getattr(inner, "dtype", None) != "string":
        raise ProjectError(
            f"the {tag_column!r} column holds tag ids without names; save it with ClassLabel names "
            "(O, B-PER, I-PER ...) or as strings"
        )
    found = {tag for split in (train, val) for tags in split[tag_column] for tag in tags}
    names = sorted(found, key=lambda tag: (tag != "O", tag[2:], tag))
    ids = {tag: index for index, tag in enumerate(names)}

    def encode(split: Dataset) -> Dataset:
        return split.map(lambda row: {tag_column: [ids[tag] for tag in row[tag_column]]})

    return names, encode(train), encode(val)


def read_splits(config: Config) -> tuple[Dataset, Dataset, str, str, list[str]]:
    """The training and validation splits, their word and tag columns, and the tag names."""
    if config.dataset == "builtin":
        source: Dataset | DatasetDict = clinical_notes(config.val_fraction)
    else:
        source = read_dataset(config.dataset)
    train, val = train_val_split(source, config)
    word_column = find_column(train, config.text_column, WORD_COLUMNS, "text_column")
    tag_column = find_column(train, config.label_column, TAG_COLUMNS, "label_column")
    names, train, val = tag_names(train, val, tag_column)
    if not any(name.startswith("B-") for name in names):
        raise ProjectError(f"the tags of {tag_column!r} ({', '.join(names[:6])}) have no B- entity tags")
    return train, val, word_column, tag_column, names


def split_contents(config: Config) -> tuple[list[str], list[str]]:
    """What identifies each training and validation note, for counting validation notes that
    leak what training saw: its patient where the data names one (the built-in notes do), so a
    patient with notes on both sides counts, else the note's text, so a copy counts."""
    train, val, word_column, _, _ = read_splits(config)
    if "patient" in train.column_names and "patient" in val.column_names:
        return [f"patient {p}" for p in train["patient"]], [f"patient {p}" for p in val["patient"]]
    return [join_words(words) for words in train[word_column]], [
        join_words(words) for words in val[word_column]
    ]


# --- Tokenization and tag alignment --------------------------------------------------------


class TaggingPreprocessor(SavedTokenizer):
    """Words -> token ids padded to max_length, and word tags -> one tag per token (the first
    piece of each word; IGNORE elsewhere). Knows the tag names (see SavedTokenizer)."""

    def encode(
        self, notes: list[list[str]], tags: list[list[int]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids, and per token the index of its word where it is a word's first piece
        (IGNORE elsewhere); with `tags`, that word's tag instead of its index."""
        encoded = self.tokenizer(
            notes, is_split_into_words=True, truncation=True, max_length=self.max_length,
            padding="max_length", return_tensors="pt",
        )  # fmt: skip
        firsts = torch.full_like(encoded["input_ids"], IGNORE)
        for row in range(len(notes)):
            previous = None
            for position, word in enumerate(encoded.word_ids(row)):
                if word is not None and word != previous:
                    firsts[row, position] = word if tags is None else tags[row][word]
                previous = word
        return encoded["input_ids"], firsts


def load_preprocessor(run_dir: Path) -> TaggingPreprocessor:
    return TaggingPreprocessor.load(run_dir)


class TaggedNotes(torch.utils.data.Dataset):
    """A split tokenized once, up front, as (token ids, token tags) pairs."""

    def __init__(self, split: Dataset, preprocessor: TaggingPreprocessor, word_column: str, tag_column: str):
        self.words: list[list[str]] = list(split[word_column])
        self.tags: list[list[int]] = list(split[tag_column])
        self.input_ids, self.token_tags = preprocessor.encode(self.words, self.tags)

    @property
    def texts(self) -> list[str]:
        return [join_words(words) for words in self.words]

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.input_ids[index], self.token_tags[index]


@dataclass
class TaskData:
    train: TaggedNotes
    val: TaggedNotes
    preprocessor: TaggingPreprocessor


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the source, split it, train (or load) the tokenizer, tokenize and align both splits."""
    train, val, word_column, tag_column, names = read_splits(config)
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        if config.model_name:
            tokenizer = AutoTokenizer.from_pretrained(config.model_name, add_prefix_space=True)
            if not tokenizer.is_fast:  # only fast tokenizers say which word each piece is from
                raise ProjectError(f"{config.model_name} has no fast tokenizer; tag alignment needs one")
            if tokenizer.pad_token is None:  # GPT-style tokenizers have none
                tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        else:
            tokenizer = cached_wordpiece(
                [join_words(words) for words in train[word_column]], config.vocab_size
            )
        preprocessor = TaggingPreprocessor(tokenizer, names, config.max_length)
    return TaskData(
        train=TaggedNotes(train, preprocessor, word_column, tag_column),
        val=TaggedNotes(val, preprocessor, word_column, tag_column),
        preprocessor=preprocessor,
    )
