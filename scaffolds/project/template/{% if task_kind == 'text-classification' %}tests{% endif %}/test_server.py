"""The HTTP API over real HTTP, `runner.py predict` and `runner.py export`: texts in, labels out, bad
input refused."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import torch
from tokenizers import Tokenizer

from conftest import run_cli, saved_step
from data import BUILTIN_PACKAGES, TaskData
from predictor import Predictor
from text_encoding import TOKENIZER_FILE, crop_padding


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "task": "text-classification",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_a_text_gets_ranked_labels(server_url: str) -> None:
    text = "Return an asyncio event loop for the current thread, creating one if needed."
    response = httpx.post(f"{server_url}/predict", json={"text": text})
    assert response.status_code == 200, response.text
    body = response.json()
    probabilities = [entry["probability"] for entry in body["top"]]
    assert len(probabilities) == len(BUILTIN_PACKAGES)
    assert probabilities == sorted(probabilities, reverse=True) and abs(sum(probabilities) - 1) < 1e-3
    assert body["label"] == body["top"][0]["label"] in BUILTIN_PACKAGES


def test_an_empty_text_gets_422_naming_the_field(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict", json={"text": ""})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("text:")


def test_malformed_json_and_a_wrong_type_get_422(server_url: str) -> None:
    broken = httpx.post(
        f"{server_url}/predict", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and "JSON" in broken.json()["detail"]
    wrong = httpx.post(f"{server_url}/predict", json={"text": ["a", "list"]})
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("text:")


def test_whitespace_only_text_is_answered_not_crashed(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict", json={"text": "   "})
    assert response.status_code == 200 and response.json()["label"] in BUILTIN_PACKAGES


def test_runner_predict_labels_texts(trained_run: Path) -> None:
    result = run_cli("predict", "--run", str(trained_run), "Build a MIME message.")
    assert result.returncode == 0, result.stderr
    assert "Build a MIME message.:" in result.stdout


def test_the_exported_classifier_and_its_tokenizer_give_the_predictors_probabilities(
    trained_run: Path, data: TaskData, tmp_path: Path
) -> None:
    path = tmp_path / "c.pt2"
    result = run_cli("export", "--run", str(trained_run), "--output", str(path))
    assert result.returncode == 0, result.stderr
    length = data.preprocessor.max_length
    assert f"cuts each at {length} tokens" in result.stdout and "extra_files=files" in result.stdout
    assert "Warning" not in result.stderr
    # What the command prints, run with torch and the tokenizers library only.
    files = {TOKENIZER_FILE: ""}
    program = torch.export.load(path, extra_files=files).module()
    tokenizer = Tokenizer.from_str(files[TOKENIZER_FILE])
    texts = [data.val.texts[i] for i in range(6)] + ["", "os " * 2 * length]  # empty, and cut short
    ids = torch.tensor([text.ids for text in tokenizer.encode_batch(texts)])
    assert torch.equal(ids, data.preprocessor.encode(texts))  # the ids training saw, all max_length long
    predictor = Predictor(trained_run, "cpu")
    short = [" ".join(text.split()[:8]) for text in texts[:6]]  # a batch as long as its longest text only
    short_ids = torch.tensor([text.ids for text in tokenizer.encode_batch(short)])
    assert torch.equal(short_ids, crop_padding(data.preprocessor.encode(short), data.preprocessor.pad_id)[0])
    assert short_ids.shape[1] < length
    one = torch.tensor([tokenizer.encode(short[0]).ids])  # one text, its own length
    empty = torch.tensor([[data.preprocessor.pad_id]])  # as the command says: an empty text alone has no ids
    for batch_ids, batch_texts in ((one, short[:1]), (empty, [""]), (short_ids, short), (ids, texts)):
        with torch.no_grad():
            probabilities = program(batch_ids)
        for row, text in zip(probabilities, batch_texts, strict=True):
            expected = predictor.predict(text, top_k=3)["top"]
            best = row.topk(3)
            labels = [data.preprocessor.labels[i] for i in best.indices.tolist()]
            assert labels == [entry["label"] for entry in expected]
            assert best.values.tolist() == pytest.approx([e["probability"] for e in expected], abs=1e-5)
    body = json.loads(run_cli("export", "--run", str(trained_run), "--output", str(path), "--json").stdout)
    assert body["bytes"] == path.stat().st_size and body["labels"] == data.preprocessor.labels
    assert body["longest_text"] == length and body["tokenizer"] == TOKENIZER_FILE


def test_error_examples_list_the_texts_labelled_wrong(trained_run: Path, data: TaskData) -> None:
    predictor = Predictor(trained_run, "cpu")
    texts = data.val.texts[:30]
    as_predicted = [predictor.preprocessor.labels.index(predictor.predict(text)["label"]) for text in texts]
    assert predictor.errors(texts, as_predicted, limit=5) == (0, [])  # its own labels are never wrong
    edited = [*as_predicted[:-1], (as_predicted[-1] + 1) % len(predictor.preprocessor.labels)]
    count, examples = predictor.errors(texts, edited, limit=5)
    assert count == 1 and examples[0]["text"] == texts[-1]
    assert examples[0]["label"] == predictor.preprocessor.labels[edited[-1]]
    assert examples[0]["predicted"] == predictor.preprocessor.labels[as_predicted[-1]]
    body = json.loads(run_cli("evaluate", "--run", str(trained_run), "--errors", "2", "--json").stdout)
    assert len(body["errors"]) == min(2, body["error_count"]) and "macro_f1" in body
