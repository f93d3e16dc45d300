"""Text in, (tokens, next tokens) windows out: the corpus, the split and the tokenization.

Where the text comes from (config.dataset):
  builtin      the Python standard library's own source code on this machine (every .py file
               under sysconfig's stdlib path, without test suites and site-packages): about
               13 MB of real text, nothing to download; split by file, every 20th file held out
  instructions requests and their answers made from the same files' functions (instructions.py),
               split by file as builtin is, in its chat template, with the loss on the answers only
  a file       .txt (one document per line), or .csv / .json / .jsonl / .parquet with a text column
  a folder     a dataset saved with `save_to_disk`, or a folder of such data files
  a hub name   any Hugging Face dataset with a text column (needs the network once)

Tokenizers (config.tokenizer):
  bytes        the 256 values of UTF-8 bytes: nothing to train, no unknown tokens, instant
  bpe          byte-level BPE with vocab_size tokens, trained here on the training text
  (with config.model_name set, that model's own tokenizer, loaded with from_pretrained)
The tokenizer is saved with each run, so sampling decodes exactly as training encoded.
"""

from __future__ import annotations

import json
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from config import Config, ProjectError, base_run
from instructions import ASSISTANT, IGNORE, chat_parts, conversations
from loading import read_dataset, train_val_split

DOCUMENT_SEPARATOR = "\n\n\n"  # between documents when there is no end-of-text token
ANSWER_ROOM = 72  # tokens kept for an answer after a long instruction (the data's longest is 67 bytes)


# --- Sources -------------------------------------------------------------------------------


def stdlib_sources(max_mb: float = 0.0) -> list[Path]:
    """The standard library's .py files in a fixed order (at most max_mb megabytes of them)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files, total = [], 0
    for path in sorted(root.rglob("*.py")):
        parts = set(path.relative_to(root).parts[:-1])
        if parts & {"site-packages", "dist-packages", "test", "tests", "idlelib", "__pycache__"}:
            continue
        files.append(path)
        total += path.stat().st_size
        if max_mb and total >= max_mb * 1e6:
            break
    return files


def stdlib_corpus(config: Config) -> tuple[list[str], list[str]]:
    """Training and validation documents: whole files, every k-th file held out for validation."""
    every = max(2, round(1 / config.val_fraction))
    train, val = [], []
    texts = (path.read_text(encoding="utf-8", errors="replace") for path in stdlib_sources(config.corpus_mb))
    # Each text once: the standard library ships a few identical (and empty) files, and a copy on
    # each side of the split would score the model on what it trained on.
    for index, text in enumerate(dict.fromkeys(text for text in texts if text.strip())):
        (val if index % every == every - 1 else train).append(text)
    if not val and len(train) > 1:  # a corpus of fewer than `every` files still needs a validation file
        val.append(train.pop())
    return train, val


def dataset_documents(config: Config) -> tuple[list[str], list[str]]:
    """Training and validation documents of a Hugging Face dataset (its own split if it has one)."""
    from datasets import DatasetDict  # only here: the built-in corpus needs no `datasets`

    source = read_dataset(config.dataset)
    columns = (source["train"] if isinstance(source, DatasetDict) else source).column_names
    if config.text_column not in columns:
        listed = ", ".join(columns)
        raise ProjectError(
            f"the dataset has no column {config.text_column!r}; it has {listed} (--set text_column=)"
        )
    source, val = train_val_split(source, config)
    return list(source[config.text_column]), list(val[config.text_column])


# --- Tokenization --------------------------------------------------------------------------


class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256): any text round-trips, nothing to train."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def encode_corpus(self, documents: list[str]) -> torch.Tensor:
        data = DOCUMENT_SEPARATOR.join(documents).encode("utf-8")
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)

    def save(self, run_dir: Path) -> None:
        (run_dir / "preprocessor.json").write_text(json.dumps({"tokenizer": "bytes"}) + "\n")


class PretrainedTokenizer:
    """A Hugging Face tokenizer (trained here with `tokenizers`, or a pretrained model's own)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tokenizer = tokenizer
        self.vocab_size = len(tokenizer)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def encode_corpus(self, documents: list[str]) -> torch.Tensor:
        """All documents as one stream, each followed by the end-of-text token."""
        end = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        encoded = self.tokenizer(documents, add_special_tokens=False)["input_ids"]
        return torch.tensor([t for ids in encoded for t in ids + end], dtype=torch.int32)

    def save(self, run_dir: Path) -> None:
        self.tokenizer.save_pretrained(run_dir / "tokenizer")
        (run_dir / "preprocessor.json").write_text(json.dumps({"tokenizer": "pretrained"}) + "\n")


Tokenizer = ByteTokenizer | PretrainedTokenizer


def train_bpe(documents: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2's scheme) with `vocab_size` tokens, trained on `documents`."""
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tokenizer = RawTokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(documents, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")


def make_tokenizer(config: Config, documents: list[str]) -> Tokenizer:
    if config.model_name:
        return PretrainedTokenizer(AutoTokenizer.from_pretrained(config.model_name))
    if config.tokenizer == "bytes":
        return ByteTokenizer()
    if config.tokenizer == "bpe":
        return PretrainedTokenizer(train_bpe(documents, config.vocab_size))
    raise ProjectError(f"unknown tokenizer {config.tokenizer!r}: use bytes or bpe")


def load_preprocessor(run_dir: Path) -> Tokenizer:
    saved = json.loads((run_dir / "preprocessor.json").read_text())
    if saved["tokenizer"] == "bytes":
        return ByteTokenizer()
    return PretrainedTokenizer(AutoTokenizer.from_pretrained(run_dir / "tokenizer"))


class TokenWindows(torch.utils.data.Dataset):
    """Consecutive windows of block_size + 1 tokens, as (inputs, targets shifted by one)."""

    def __init__(self, tokens: torch.Tensor, block_size: int):
        self.tokens = tokens
        self.block_size = block_size

    def __len__(self) -> int:
        return max(0, (len(self.tokens) - 1) // self.block_size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = index * self.block_size
        window = self.tokens[start : start + self.block_size + 1].long()
        return window[:-1], window[1:]


class ChatExamples(torch.utils.data.Dataset):
    """One conversation per example, as (inputs, targets) of block_size tokens each: targets are
    the next tokens of the response (its end marker included) and IGNORE everywhere else, so the
    loss is the response's alone and the prompt is only read. A conversation longer than the
    block loses the end of its prompt, never its response; a shorter one is padded."""

    def __init__(self, tokenizer: Tokenizer, texts: list[str], block_size: int):
        self.examples = []
        for text in texts:
            prompt, response = chat_parts(text)
            answer = tokenizer.encode(response)
            asked = prompt_tokens(tokenizer, prompt, block_size + 1 - len(answer))
            answer = answer[: block_size + 1 - len(asked)]
            tokens = asked + answer
            inputs = torch.zeros(block_size, dtype=torch.long)
            targets = torch.full((block_size,), IGNORE, dtype=torch.long)
            inputs[: len(tokens) - 1] = torch.tensor(tokens[:-1])
            targets[len(asked) - 1 : len(tokens) - 1] = torch.tensor(answer)
            self.examples.append((inputs, targets))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.examples[index]


def prompt_room(block_size: int) -> int:
    """The most tokens a user's turn keeps in generation, where the answer's length is not known
    yet: the rest of the block is left for an answer of up to ANSWER_ROOM tokens (or half of it,
    in a short block). Training keeps all of a prompt that fits beside its answer: cutting it here
    too gave the instruction-tuning spec's two runs a ROUGE-L of 0.47 instead of 0.49."""
    return max(block_size - ANSWER_ROOM, block_size // 2)


def prompt_tokens(tokenizer: Tokenizer, prompt: str, limit: int) -> list[int]:
    """The user's turn as at most `limit` tokens: a long instruction loses its end, never the
    assistant's marker that the answer follows (training and generation cut it alike)."""
    marker = tokenizer.encode(ASSISTANT)
    return tokenizer.encode(prompt.removesuffix(ASSISTANT))[: max(1, limit - len(marker))] + marker


def prompt_targets(examples: Iterable[tuple[torch.Tensor, torch.Tensor]], marker: list[int]) -> int:
    """How many of the loss's targets lie in the user's turn, up to and including the assistant's
    `marker` (its token ids): none, when the loss is on the answers alone (`runner.py check`'s
    prompt_loss_tokens). Read off the examples as the trainer gets them; a conversation without
    the marker is all prompt."""
    counted = 0
    for inputs, targets in examples:
        tokens, size = inputs.tolist(), len(marker)
        starts = (i for i in range(len(tokens) - size + 1) if tokens[i : i + size] == marker)
        answer_start = next(starts, len(tokens)) + size  # the position of the answer's first token
        # The target at position i is the token at i + 1: a prompt token for i + 1 < answer_start.
        counted += int((targets[: answer_start - 1] != IGNORE).sum())
    return counted


Examples = TokenWindows | ChatExamples


def examples_of(config: Config, tokenizer: Tokenizer, documents: list[str]) -> Examples:
    """What the model trains and is scored on: conversations one by one with the instruction
    data, else the documents as one stream cut into windows."""
    if config.dataset == "instructions":
        return ChatExamples(tokenizer, documents, config.block_size)
    return TokenWindows(tokenizer.encode_corpus(documents), config.block_size)


@dataclass
class TaskData:
    train: Examples
    val: Examples
    preprocessor: Tokenizer


def split_contents(config: Config) -> tuple[list[str], list[str]]:
    """The training and validation documents (with the instruction data, whole conversations)."""
    if config.dataset == "builtin":
        return stdlib_corpus(config)
    if config.dataset == "instructions":
        return conversations(*stdlib_corpus(config))
    return dataset_documents(config)


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the documents, make (or load) the tokenizer, and cut both splits into windows. A run
    fine-tuned from another (`init_from`) keeps that run's tokenizer: its weights read those ids."""
    train_docs, val_docs = split_contents(config)
    if run_dir is None and config.init_from:
        run_dir = base_run(config)
    tokenizer = load_preprocessor(run_dir) if run_dir is not None else make_tokenizer(config, train_docs)
    return TaskData(
        train=examples_of(config, tokenizer, train_docs),
        val=examples_of(config, tokenizer, val_docs),
        preprocessor=tokenizer,
    )
