"""The two corpora, the split, the original tokenizer and BERT's masking."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from config import Config
from data import (
    CLAUSES,
    DOMAIN,
    GENERAL,
    IGNORED,
    UNLABELLED,
    TaskData,
    builtin_clauses,
    contract_clause,
    general_split,
    mask_tokens,
    split_contents,
    unpack_targets,
)


def test_the_built_in_clauses_are_fixed_balanced_and_read_as_contracts() -> None:
    texts, labels = builtin_clauses(400)
    assert (texts, labels) == builtin_clauses(400)  # a fixed seed: the same corpus on every machine
    assert Counter(labels) == {label: 50 for label in range(len(CLAUSES))}
    assert len(set(texts)) == len(texts)
    rng = np.random.default_rng(0)
    clause = contract_clause("governing_law", rng)
    assert "{" not in clause and clause[0].isupper()
    assert all(sentence[0].isupper() for sentence in clause.split(". ") if sentence)


def test_the_general_corpus_is_held_out_from_the_original_encoder_and_shared_by_no_split() -> None:
    train, val = general_split(seed=1337)
    assert len(val) == 1000 and len(train) > 4 * len(val)
    assert not set(train) & set(val)
    assert general_split(seed=1337) == (train, val)


def test_no_domain_text_is_on_both_sides_of_the_split(config: Config) -> None:
    train, val = split_contents(config)
    assert len(val) == 1000 and len(train) == 4000 and not set(train) & set(val)


def test_validation_holds_both_corpora_dealt_together(data: TaskData) -> None:
    corpus = data.val.corpus
    assert Counter(corpus) == {DOMAIN: 1000, GENERAL: 1000}
    assert GENERAL in corpus[:64] and DOMAIN in corpus[:64]  # eval_batches of them see both
    general = [i for i, c in enumerate(corpus) if c == GENERAL]
    assert all(data.val.labels[i] == UNLABELLED for i in general)
    replayed = Counter(data.train.corpus)[GENERAL]
    assert replayed == round(4000 * 0.5)  # general_mix of the domain's training texts


def test_the_tokenizer_has_a_mask_and_keeps_it_whole(data: TaskData) -> None:
    tokenizer = data.preprocessor
    ids = tokenizer.encode(["The courts of [MASK] shall decide."])[0]
    assert (ids == tokenizer.mask_id).sum() == 1
    assert tokenizer.mask_id not in tokenizer.encode(["the mask of a model"])[0].tolist()


def test_masking_chooses_about_its_share_and_mostly_writes_the_mask_token(data: TaskData) -> None:
    tokenizer = data.preprocessor
    ids = tokenizer.encode(["word " * 200])[0]  # cut to max_length
    real = (ids != tokenizer.pad_id).sum().item()
    generator = torch.Generator().manual_seed(0)
    chosen = replaced = 0
    for _ in range(200):
        masked, targets = mask_tokens(ids, tokenizer, 0.15, generator)
        picked = targets != IGNORED
        assert torch.equal(targets[picked], ids[picked])  # the targets are what was there
        assert torch.equal(masked[~picked], ids[~picked])  # nothing else changes
        assert not picked[ids == tokenizer.pad_id].any()
        chosen += picked.sum().item()
        replaced += (masked[picked] == tokenizer.mask_id).sum().item()
    assert chosen / (200 * real) == pytest.approx(0.15, abs=0.02)
    assert replaced / chosen == pytest.approx(0.8, abs=0.05)


def test_a_short_text_always_has_one_token_to_restore(data: TaskData) -> None:
    ids = data.preprocessor.encode(["Hi"])[0]
    for seed in range(20):
        _, targets = mask_tokens(ids, data.preprocessor, 0.01, torch.Generator().manual_seed(seed))
        assert (targets != IGNORED).sum() == 1


def test_evaluation_masks_the_same_tokens_every_time_and_training_does_not(data: TaskData) -> None:
    first, again = data.val[3], data.val[3]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    draws = {tuple(data.train[3][0].tolist()) for _ in range(10)}
    assert len(draws) > 1
    token_targets, labels, corpus = unpack_targets(torch.stack([first[1], data.val[4][1]]))
    assert token_targets.shape == (2, data.preprocessor.max_length)
    assert labels.tolist() == data.val.labels[3:5] and corpus.tolist() == data.val.corpus[3:5]
