"""Tagging data: the generated notes, the split by patient, tags aligned to word pieces, local files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from config import Config, ProjectError
from data import (
    BUILTIN_TAGS,
    CONDITIONS,
    DRUGS,
    IGNORE,
    TaskData,
    build_data,
    clinical_notes,
    join_words,
    load_preprocessor,
    split_contents,
    split_words,
)
from loading import count_shared
from metrics import spans


@pytest.fixture(scope="module")
def notes():
    return clinical_notes()


def entity_texts(split, kind: str) -> set[str]:
    """The text of every entity of type `kind` in a split."""
    found = set()
    for words, tags in zip(split["tokens"], split["ner_tags"], strict=True):
        for span_kind, first, last in spans([BUILTIN_TAGS[t] for t in tags]):
            if span_kind == kind:
                found.add(" ".join(words[first : last + 1]).lower())
    return found


def test_the_notes_are_the_same_on_every_call_and_split_by_patient(notes) -> None:
    again = clinical_notes()
    assert again["train"]["tokens"] == notes["train"]["tokens"]
    assert len(notes["train"]) > 1500 and len(notes["validation"]) > 350
    assert not set(notes["train"]["patient"]) & set(notes["validation"]["patient"])
    train_texts = {join_words(words) for words in notes["train"]["tokens"]}
    assert not any(join_words(words) in train_texts for words in notes["validation"]["tokens"])


def test_some_names_occur_only_in_validation_notes(notes) -> None:
    train_drugs, val_drugs = entity_texts(notes["train"], "DRUG"), entity_texts(notes["validation"], "DRUG")
    held_out = {drug.lower() for drug in DRUGS[4::5]}
    assert held_out <= val_drugs and not held_out & train_drugs
    assert val_drugs & train_drugs, "validation has seen names too"
    assert entity_texts(notes["validation"], "CONDITION") - entity_texts(notes["train"], "CONDITION") == {
        condition.lower() for condition in CONDITIONS[4::5]
    }


def test_tags_are_bio_and_every_entity_type_occurs(notes) -> None:
    tags = [BUILTIN_TAGS[t] for row in notes["train"]["ner_tags"] for t in row]
    assert {"B-DRUG", "I-DOSE", "B-CONDITION", "I-CONDITION", "O"} <= set(tags)
    for row in notes["train"]["ner_tags"]:
        names = [BUILTIN_TAGS[t] for t in row]
        for previous, tag in zip(["O", *names], names, strict=False):
            if tag.startswith("I-"):  # an I- tag always continues an entity of its own type
                assert previous[2:] == tag[2:]
    assert any(not any(row) for row in notes["train"]["ner_tags"]), "some notes have no entity"


def test_words_split_and_join_back_to_the_same_words() -> None:
    text = "Started Lisinopril 20mg PO daily; BP 134/88 (Dr. Kim), 12.5 mg."
    words = [match.group() for match in split_words(text)]
    assert words[:5] == ["Started", "Lisinopril", "20", "mg", "PO"]
    assert "12.5" in words and words.count("/") == 1
    assert [match.group() for match in split_words(join_words(words))] == words
    assert join_words(["Dr", ".", "Kim", ",", "20", "mg", "."]) == "Dr. Kim, 20 mg."


def test_each_word_tag_sits_on_its_first_word_piece(data: TaskData) -> None:
    preprocessor = data.preprocessor
    words = ["Started", "metoprolol", "50", "mg", "."]
    tags = [0, BUILTIN_TAGS.index("B-DRUG"), BUILTIN_TAGS.index("B-DOSE"), BUILTIN_TAGS.index("I-DOSE"), 0]
    input_ids, token_tags = preprocessor.encode([words], [tags])
    pieces = preprocessor.tokenizer.convert_ids_to_tokens(input_ids[0])
    scored = [
        (piece, int(tag)) for piece, tag in zip(pieces, token_tags[0].tolist(), strict=True) if tag != IGNORE
    ]
    assert [tag for _, tag in scored] == tags  # one scored piece per word, in order
    assert all(not piece.startswith("##") for piece, _ in scored)
    assert (token_tags[0][input_ids[0] == preprocessor.pad_id] == IGNORE).all()
    _, indices = preprocessor.encode([words])  # without tags: each first piece's word index
    assert [i for i in indices[0].tolist() if i != IGNORE] == list(range(len(words)))


def test_the_split_datasets_hold_aligned_examples(data: TaskData, config: Config) -> None:
    ids, tags = data.train[0]
    assert ids.shape == tags.shape == (config.max_length,)
    assert int((tags != IGNORE).sum()) == min(len(data.train.words[0]), int((ids != 0).sum()))
    assert data.preprocessor.labels == BUILTIN_TAGS


def test_the_tokenizer_is_saved_with_a_run_and_loaded_back(data: TaskData, tmp_path: Path) -> None:
    data.preprocessor.save(tmp_path)
    loaded = load_preprocessor(tmp_path)
    notes = [["Continue", "warfarin", "5", "mg"], ["Denies", "chest", "pain", "."]]
    assert (loaded.encode(notes)[0] == data.preprocessor.encode(notes)[0]).all()
    assert loaded.labels == data.preprocessor.labels


def test_the_leak_check_counts_notes_of_a_training_patient_and_copies_of_training_notes(
    config: Config, tmp_path: Path
) -> None:
    """The built-in notes name their patient: a validation note of a training patient counts.
    Data without patients counts validation notes that copy a training note."""
    train, val = split_contents(config)
    assert count_shared(train, val) == 0
    assert count_shared(train, [*val, train[0]]) == 1
    note = ["Started", "aspirin", "daily", "."]
    rows = [{"tokens": [*note, str(n)], "ner_tags": ["O", "B-DRUG", "O", "O", "O"]} for n in range(40)]
    rows += rows[:3]  # three notes twice: whichever side each copy lands on, the split may hold a leak
    path = tmp_path / "notes.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    local = replace(config, dataset=str(path))
    local_train, local_val = split_contents(local)
    assert set(local_train) | set(local_val) == {join_words([*note, str(n)]) for n in range(40)}
    copies = sum(text in set(local_train) for text in local_val)
    assert count_shared(local_train, local_val) == copies


def test_a_jsonl_file_with_string_tags_gets_tag_names(config: Config, tmp_path: Path) -> None:
    rows = [{"words": ["Alice", "visited", "Paris", "."], "tags": ["B-PER", "O", "B-LOC", "O"]}] * 10
    rows += [{"words": ["Bob", "Smith", "left", "."], "tags": ["B-PER", "I-PER", "O", "O"]}] * 10
    path = tmp_path / "people.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    data = build_data(replace(config, dataset=str(path)))
    assert data.preprocessor.labels == ["O", "B-LOC", "B-PER", "I-PER"]
    assert len(data.train) + len(data.val) == 20


def test_tag_ids_without_names_are_refused_with_a_way_out(config: Config, tmp_path: Path) -> None:
    path = tmp_path / "ids.jsonl"
    path.write_text("\n".join(json.dumps({"tokens": ["a", "b"], "ner_tags": [0, 1]}) for _ in range(10)))
    with pytest.raises(ProjectError, match="without names"):
        build_data(replace(config, dataset=str(path)))


def test_a_file_without_a_words_column_names_the_columns_it_has(config: Config, tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_text("\n".join(json.dumps({"sentence": "a b", "ner_tags": ["O", "O"]}) for _ in range(10)))
    with pytest.raises(ProjectError, match="no tokens column among sentence, ner_tags"):
        build_data(replace(config, dataset=str(path)))
