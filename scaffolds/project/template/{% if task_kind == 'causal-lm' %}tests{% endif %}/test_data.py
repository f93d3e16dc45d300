"""Language-model data: the standard library corpus, tokenizers, windows, local text files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from config import Config, ProjectError
from data import (
    ByteTokenizer,
    PretrainedTokenizer,
    TaskData,
    TokenWindows,
    build_data,
    load_preprocessor,
    stdlib_corpus,
    stdlib_sources,
    train_bpe,
)


def test_the_builtin_corpus_is_the_standard_librarys_own_source(config: Config) -> None:
    files = stdlib_sources(max_mb=0.4)
    assert files and all(f.suffix == ".py" for f in files)
    assert not any({"test", "tests", "site-packages"} & set(f.parts) for f in files)
    assert sum(f.stat().st_size for f in files) >= 0.4e6
    train, val = stdlib_corpus(config)
    assert len(val) >= 1 and len(train) > len(val)
    assert not set(val) & set(train), "validation files never appear in training"


def test_bytes_round_trip_any_text() -> None:
    tokenizer = ByteTokenizer()
    text = "def naïve(x):  # ünïcödé ✓\n    return x"
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert max(tokenizer.encode(text)) < tokenizer.vocab_size == 256


def test_windows_pair_each_token_with_the_next(data: TaskData, config: Config) -> None:
    inputs, targets = data.train[3]
    assert inputs.shape == targets.shape == (config.block_size,)
    assert (inputs[1:] == targets[:-1]).all()
    assert len(data.train) == (len(data.train.tokens) - 1) // config.block_size


def test_a_trained_bpe_tokenizer_is_saved_and_loaded_back(tmp_path: Path) -> None:
    documents = [path.read_text(encoding="utf-8") for path in stdlib_sources(max_mb=0.2)]
    tokenizer = PretrainedTokenizer(train_bpe(documents, vocab_size=500))
    assert tokenizer.vocab_size <= 500
    sample = "import os\n\ndef main():\n    return os.getcwd()\n"
    assert len(tokenizer.encode(sample)) < len(sample.encode())  # merges make it shorter than bytes
    tokenizer.save(tmp_path)
    loaded = load_preprocessor(tmp_path)  # AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    assert loaded.encode(sample) == tokenizer.encode(sample)
    assert loaded.decode(loaded.encode(sample)) == sample


def test_bpe_can_be_chosen_from_the_settings(config: Config) -> None:
    data = build_data(replace(config, tokenizer="bpe", vocab_size=400, corpus_mb=0.1))
    assert isinstance(data.preprocessor, PretrainedTokenizer) and data.preprocessor.vocab_size <= 400
    assert int(data.train.tokens.max()) < 400


def test_a_local_text_file_is_read_one_document_per_line(config: Config, tmp_path: Path) -> None:
    lines = [f"line {i}: the quick brown fox jumps over the lazy dog" for i in range(200)]
    (tmp_path / "corpus.txt").write_text("\n".join(lines))
    data = build_data(replace(config, dataset=str(tmp_path / "corpus.txt"), block_size=16, val_fraction=0.1))
    assert len(data.train) > 0 and len(data.val) > 0
    inputs, _ = data.train[0]
    assert "quick brown fox" in data.preprocessor.decode(data.train.tokens[:200].tolist())
    assert isinstance(data.train, TokenWindows) and inputs.shape == (16,)


def test_a_jsonl_file_without_the_text_column_is_refused_by_name(config: Config, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"body": f"document {i}"}) for i in range(10)))
    with pytest.raises(ProjectError, match="no column 'text'"):
        build_data(replace(config, dataset=str(path)))
    data = build_data(replace(config, dataset=str(path), text_column="body", block_size=4))
    assert len(data.train) > 0


def test_an_unknown_tokenizer_is_refused(config: Config) -> None:
    with pytest.raises(ProjectError, match="unknown tokenizer"):
        build_data(replace(config, tokenizer="words"))
