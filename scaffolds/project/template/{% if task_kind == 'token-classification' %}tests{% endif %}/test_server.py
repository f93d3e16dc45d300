"""The HTTP API over real HTTP, and `runner.py predict`: notes in, entities out, bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from conftest import run_cli, saved_step
from data import ENTITY_TYPES, TaskData, join_words, split_words
from metrics import spans
from predictor import Predictor

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
