"""The HTTP API over real HTTP, `runner.py predict` and `runner.py export`: notes in, entities
out, bad input refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import torch
from tokenizers import Tokenizer

from conftest import run_cli, saved_step
from data import ENTITY_TYPES, TaskData, join_words, split_words
from metrics import spans
from predictor import TAGGING_FILE, Predictor
from text_encoding import TOKENIZER_FILE

NOTE = "Started lisinopril 10 mg daily for hypertension."


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "task": "token-classification",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_a_note_gets_entities_at_their_offsets(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict", json={"text": NOTE})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [word["word"] for word in body["words"]] == [m.group() for m in split_words(NOTE)]
    for entity in body["entities"]:
        assert NOTE[entity["start"] : entity["end"]] == entity["text"]
        assert entity["type"] in ENTITY_TYPES and 0 < entity["score"] <= 1
    found = sorted(spans([word["tag"] for word in body["words"]]), key=lambda span: span[1])
    assert [kind for kind, _, _ in found] == [entity["type"] for entity in body["entities"]]


def test_an_empty_text_gets_422_naming_the_field(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict", json={"text": ""})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("text:")
    wrong = httpx.post(f"{server_url}/predict", json={"text": ["a", "list"]})
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("text:")


def test_whitespace_only_text_has_no_entities(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict", json={"text": "   "})
    assert response.status_code == 200 and response.json() == {"entities": [], "words": []}


def test_a_note_longer_than_the_model_reads_is_tagged_in_windows(trained_run: Path) -> None:
    predictor = Predictor(trained_run, device="cpu")
    long_note = " ".join([NOTE] * 30)  # far more word pieces than max_length
    words = predictor.predict(long_note)["words"]
    assert len(words) == len(split_words(long_note)) and all(word["tag"] for word in words)


def test_runner_predict_lists_the_entities(trained_run: Path) -> None:
    result = run_cli("predict", "--run", str(trained_run), NOTE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(NOTE + ":")
    as_json = run_cli("predict", "--run", str(trained_run), "--json", NOTE)
    answer = json.loads(as_json.stdout)
    assert answer["input"] == NOTE and set(answer) == {"input", "entities", "words"}


def test_error_examples_list_the_entities_missed_and_made_up(trained_run: Path, data: TaskData) -> None:
    predictor = Predictor(trained_run, "cpu")
    labels = predictor.preprocessor.labels
    notes = data.val.words[:20]
    # Taken as labelled, the model's own tags are never wrong.
    as_predicted = [[labels.index(tag) for tag in predictor.tag_words(words)[0]] for words in notes]
    assert predictor.errors(notes, as_predicted, limit=5) == (0, [])
    # A note labelled as holding no entity: each one the model finds there is made up.
    index = next(i for i, tags in enumerate(as_predicted) if spans([labels[t] for t in tags]))
    edited = [*as_predicted[:index], [labels.index("O")] * len(notes[index]), *as_predicted[index + 1 :]]
    count, examples = predictor.errors(notes, edited, limit=5)
    found = sorted(spans([labels[t] for t in as_predicted[index]]), key=lambda span: span[1])
    assert count == 1 and examples[0]["text"] == join_words(notes[index]) and not examples[0]["missed"]
    assert [entity["type"] for entity in examples[0]["spurious"]] == [kind for kind, _, _ in found]
    # Through the command line, with the scores.
    result = run_cli("evaluate", "--run", str(trained_run), "--errors", "2", "--json")
    body = json.loads(result.stdout)
    assert body["error_count"] >= len(body["errors"]) and len(body["errors"]) <= 2 and "f1" in body
    for example in body["errors"]:
        assert example["missed"] or example["spurious"]


def test_the_exported_tagger_and_what_it_carries_tag_words_as_the_predictor_does(
    trained_run: Path, data: TaskData, tmp_path: Path
) -> None:
    path = tmp_path / "t.pt2"
    result = run_cli("export", "--run", str(trained_run), "--output", str(path))
    assert result.returncode == 0, result.stderr
    assert "extra_files=files" in result.stdout and "is_pretokenized=True" in result.stdout
    assert "Warning" not in result.stderr
    # What the command prints, run with torch, the tokenizers library, json and re only.
    files = {TOKENIZER_FILE: "", TAGGING_FILE: ""}
    program = torch.export.load(path, extra_files=files).module()
    tokenizer, tagging = Tokenizer.from_str(files[TOKENIZER_FILE]), json.loads(files[TAGGING_FILE])
    texts = [*data.val.texts[:5], NOTE]
    words = [re.findall(tagging["word_pattern"], text) for text in texts]
    assert words == [[match.group() for match in split_words(text)] for text in texts]
    predictor = Predictor(trained_run, "cpu")
    for batch in (slice(5, 6), slice(None)):  # one note, and a batch padded to its longest
        encodings = tokenizer.encode_batch(words[batch], is_pretokenized=True)
        ids = torch.tensor([encoding.ids for encoding in encodings])
        assert ids.shape[1] < predictor.preprocessor.max_length  # as long as the longest note only
        with torch.no_grad():
            probabilities = program(ids)
        for row, encoding, note in zip(probabilities, encodings, words[batch], strict=True):
            firsts = {word: position for position, word in reversed(list(enumerate(encoding.word_ids)))}
            firsts.pop(None, None)
            chosen = row[[firsts[word] for word in range(len(note))]].max(dim=-1)
            tags, confidence = predictor.tag_words(note)
            assert [tagging["tags"][i] for i in chosen.indices.tolist()] == tags
            assert chosen.values.tolist() == pytest.approx(confidence, abs=1e-5)
    body = json.loads(run_cli("export", "--run", str(trained_run), "--output", str(path), "--json").stdout)
    assert body["bytes"] == path.stat().st_size and body["labels"] == tagging["tags"]
    assert tagging["tags"] == data.preprocessor.labels
    assert body["longest_text"] == data.preprocessor.max_length and body["tagging"] == TAGGING_FILE
