"""Text data: the built-in docstring corpus, the tokenizer trained here, local files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import text_encoding
from config import Config, ProjectError
from data import (
    BUILTIN_PACKAGES,
    TaskData,
    build_data,
    load_preprocessor,
    stdlib_docstrings,
)
from text_encoding import cached_wordpiece


def test_builtin_corpus_is_docstrings_labelled_by_their_package() -> None:
    corpus = stdlib_docstrings()
    assert corpus.features["label"].names == list(BUILTIN_PACKAGES)
    assert len(corpus) > 800
    counts = [list(corpus["label"]).count(label) for label in range(len(BUILTIN_PACKAGES))]
    assert min(counts) > 100, "every package contributes"
    assert all(len(text) >= 20 for text in corpus["text"])


def test_split_is_stratified_and_every_class_is_validated(data: TaskData) -> None:
    assert data.preprocessor.labels == list(BUILTIN_PACKAGES)
    assert set(data.val.labels) == set(range(len(BUILTIN_PACKAGES)))
    assert len(data.val) == pytest.approx(0.2 * (len(data.train) + len(data.val)), abs=1)


def test_texts_become_padded_token_ids_from_a_tokenizer_trained_here(data: TaskData, config: Config) -> None:
    ids, label = data.train[0]
    assert ids.shape == (config.max_length,) and 0 <= label < len(BUILTIN_PACKAGES)
    assert data.preprocessor.pad_id == 0 and data.preprocessor.vocab_size <= config.vocab_size
    encoded = data.preprocessor.encode(["Return the event loop."])[0]
    length = int((encoded != 0).sum())
    assert 0 < length < 12 and (encoded[length:] == 0).all()  # a few tokens, then padding
    assert data.preprocessor.tokenizer.decode(encoded, skip_special_tokens=True) == "return the event loop."


def test_a_trained_vocabulary_is_reused_for_the_same_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = list(stdlib_docstrings()["text"][:200])
    first = cached_wordpiece(texts, 300, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1

    def no_training(*args: object) -> None:
        raise AssertionError("trained again although the vocabulary was cached")

    monkeypatch.setattr(text_encoding, "train_wordpiece", no_training)
    again = cached_wordpiece(texts, 300, cache_dir=tmp_path)
    assert again.get_vocab() == first.get_vocab()
    with pytest.raises(AssertionError, match="trained again"):  # other texts: another vocabulary
        cached_wordpiece(texts[:100], 300, cache_dir=tmp_path)


def test_an_unwritable_cache_still_gives_a_tokenizer(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    tokenizer = cached_wordpiece(["the event loop", "the mail message"], 100, cache_dir=blocked / "cache")
    assert tokenizer.decode(tokenizer("the event loop")["input_ids"]) == "the event loop"


def test_the_tokenizer_is_saved_with_a_run_and_loaded_back(data: TaskData, tmp_path: Path) -> None:
    data.preprocessor.save(tmp_path)
    loaded = load_preprocessor(tmp_path)  # AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    texts = ["Create a new event loop.", "Parse an email message from a string."]
    assert (loaded.encode(texts) == data.preprocessor.encode(texts)).all()
    assert loaded.labels == data.preprocessor.labels


def test_a_local_csv_with_string_labels_gets_class_names(config: Config, tmp_path: Path) -> None:
    rows = ["text,label"] + [f"good service number {i},positive" for i in range(20)]
    rows += [f"bad delay number {i},negative" for i in range(20)]
    (tmp_path / "reviews.csv").write_text("\n".join(rows))
    data = build_data(replace(config, dataset=str(tmp_path / "reviews.csv")))
    assert data.preprocessor.labels == ["negative", "positive"]
    assert len(data.train) == 32 and len(data.val) == 8


def test_a_jsonl_file_with_other_column_names_is_read_when_told(config: Config, tmp_path: Path) -> None:
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join(json.dumps({"body": f"message {i}", "topic": i % 2}) for i in range(20)))
    with pytest.raises(ProjectError, match="no text column"):
        build_data(replace(config, dataset=str(path)))
    data = build_data(replace(config, dataset=str(path), text_column="body", label_column="topic"))
    assert data.preprocessor.labels == ["0", "1"]


def test_an_unreadable_file_type_is_refused(config: Config, tmp_path: Path) -> None:
    (tmp_path / "notes.docx").write_bytes(b"PK")
    with pytest.raises(ProjectError, match="cannot read"):
        build_data(replace(config, dataset=str(tmp_path / "notes.docx")))
