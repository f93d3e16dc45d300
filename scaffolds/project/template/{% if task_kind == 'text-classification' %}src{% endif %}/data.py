"""Texts in, (token ids, label) examples out: the sources, the split and the tokenization.

Where the texts come from (config.dataset):
  builtin      the docstrings of five packages of the Python standard library on this machine
               (asyncio, email, logging, unittest, xml), each labelled with its package: about
               1,200 real English paragraphs on five distinct topics, and nothing to download
  a file       .csv / .json / .jsonl / .parquet with a text column and a label column
  a folder     a dataset saved with `save_to_disk`, or a folder of such data files
  a hub name   any Hugging Face text-classification dataset (needs the network once)

The tokenizer is a WordPiece vocabulary trained here on the training texts (the `tokenizers`
library, a second or so), or the pretrained model's own when config.model_name is set. It is
saved with each run and loaded back with AutoTokenizer.from_pretrained. A trained vocabulary is
also kept in .cache/tokenizers/ and reused for the same texts, so runs with the same seed match.
"""

from __future__ import annotations

import ast
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import AutoTokenizer

from config import Config
from loading import find_column, read_dataset, train_val_split
from text_encoding import SavedTokenizer, cached_wordpiece

if TYPE_CHECKING:  # imported where a dataset is built: `predict` and `serve` start 0.9 s sooner
    from datasets import Dataset

BUILTIN_PACKAGES = ("asyncio", "email", "logging", "unittest", "xml")
TEXT_COLUMNS = ("text", "sentence", "content", "docstring", "review")
LABEL_COLUMNS = ("label", "labels", "class", "category")


# --- Sources -------------------------------------------------------------------------------


def stdlib_docstrings() -> Dataset:
    """Docstrings of the classes and functions of BUILTIN_PACKAGES, labelled by package."""
    from datasets import ClassLabel, Dataset, Features, Value

    root = Path(sysconfig.get_paths()["stdlib"])
    texts, labels, seen = [], [], set()
    for label, package in enumerate(BUILTIN_PACKAGES):
        for path in sorted((root / package).rglob("*.py")):
            if {"test", "tests"} & set(path.relative_to(root / package).parts):
                continue  # test suites: short, repetitive docstrings about tests, not the package
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    docstring = ast.get_docstring(node)
                    # Once each: an overridden method often repeats its base's docstring, and a
                    # copy on each side of the split would score the model on what it trained on.
                    if docstring and len(docstring) >= 20 and docstring not in seen:
                        seen.add(docstring)
                        texts.append(docstring)
                        labels.append(label)
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(BUILTIN_PACKAGES))})
    return Dataset.from_dict({"text": texts, "label": labels}, features=features)


# --- Tokenization --------------------------------------------------------------------------


class TextPreprocessor(SavedTokenizer):
    """Texts -> token ids padded to max_length; knows the label names (see SavedTokenizer)."""

    def encode(self, texts: list[str]) -> torch.Tensor:
        encoded = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, padding="max_length", return_tensors="pt"
        )
        return encoded["input_ids"]


def load_preprocessor(run_dir: Path) -> TextPreprocessor:
    return TextPreprocessor.load(run_dir)


class TextDataset(torch.utils.data.Dataset):
    """A split tokenized once, up front, as (token ids, label) pairs: quick for corpora that fit
    in memory (tokenize in the DataLoader's workers instead for much larger ones)."""

    def __init__(self, split: Dataset, preprocessor: TextPreprocessor, text_column: str, label_column: str):
        self.texts: list[str] = list(split[text_column])
        self.labels: list[int] = list(split[label_column])
        self.input_ids = preprocessor.encode(self.texts)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.input_ids[index], self.labels[index]


@dataclass
class TaskData:
    train: TextDataset
    val: TextDataset
    preprocessor: TextPreprocessor


def read_splits(config: Config) -> tuple[Dataset, Dataset, str, str]:
    """The training and validation splits of the source, and its text and label columns."""
    source = stdlib_docstrings() if config.dataset == "builtin" else read_dataset(config.dataset)
    text_column = find_column(source, config.text_column, TEXT_COLUMNS, "text_column")
    label_column = find_column(source, config.label_column, LABEL_COLUMNS, "label_column")
    train, val = train_val_split(source, config, label_column)
    return train, val, text_column, label_column


def split_contents(config: Config) -> tuple[list[str], list[str]]:
    """The text of every training and validation example, for counting validation texts that
    are copies of training ones."""
    train, val, text_column, _ = read_splits(config)
    return list(train[text_column]), list(val[text_column])


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the source, split it, train (or load) the tokenizer, tokenize both splits."""
    train, val, text_column, label_column = read_splits(config)
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        if config.model_name:
            tokenizer = AutoTokenizer.from_pretrained(config.model_name)
            if tokenizer.pad_token is None:  # GPT-style tokenizers have none
                tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        else:
            tokenizer = cached_wordpiece(list(train[text_column]), config.vocab_size)
        labels = list(train.features[label_column].names)
        preprocessor = TextPreprocessor(tokenizer, labels, config.max_length)
    return TaskData(
        train=TextDataset(train, preprocessor, text_column, label_column),
        val=TextDataset(val, preprocessor, text_column, label_column),
        preprocessor=preprocessor,
    )
