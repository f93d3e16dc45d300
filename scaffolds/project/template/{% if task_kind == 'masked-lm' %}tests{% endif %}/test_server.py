"""The HTTP API over real HTTP, and `runner.py predict`: a text with [MASK] in, the likeliest
tokens for each mask, the text filled in and the clause's kind out; bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np

from conftest import run_cli, saved_step
from data import CLAUSES
from predictor import Predictor, fill_in, mask_a_word

TEXT = "The courts of [MASK] shall have exclusive jurisdiction over any dispute arising out of this [MASK]."


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "task": "masked-lm",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_each_mask_gets_its_likeliest_tokens_and_the_text_its_kind(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict", json={"text": TEXT, "top_k": 3}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == TEXT and len(body["masks"]) == 2 and body["unfilled"] == 0
    for mask in body["masks"]:
        probabilities = [entry["probability"] for entry in mask["top"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert all(entry["token"] for entry in mask["top"])
    first, second = (mask["top"][0]["token"].removeprefix("##") for mask in body["masks"])
    assert body["filled"] == TEXT.replace("[MASK]", first, 1).replace("[MASK]", second, 1)
    assert body["label"] == body["top"][0]["label"] and body["label"] in CLAUSES


def test_a_text_without_a_mask_is_classified_and_bad_requests_are_refused(server_url: str) -> None:
    body = httpx.post(
        f"{server_url}/predict", json={"text": "Either party may terminate."}, timeout=60
    ).json()
    assert body["masks"] == [] and body["label"] in CLAUSES
    for bad, field in (
        ({"text": ""}, "text"),
        ({"text": TEXT, "top_k": 0}, "top_k"),
        ({"prompt": TEXT}, "text"),
    ):
        response = httpx.post(f"{server_url}/predict", json=bad, timeout=60)
        assert response.status_code == 422 and field in response.json()["detail"]
    spaces = httpx.post(f"{server_url}/predict", json={"text": "   "}, timeout=60)
    assert spaces.status_code == 422 and "empty" in spaces.json()["detail"]


def test_the_probe_is_fitted_once_and_kept_beside_the_model(trained_run: Path) -> None:
    (trained_run / "probe.pt").unlink(missing_ok=True)
    first = Predictor(trained_run, device="cpu")
    assert (trained_run / "probe.pt").exists()
    again = Predictor(trained_run, device="cpu")
    assert again.probe is not None and first.probe is not None
    assert np.array_equal(again.probe.weight.numpy(), first.probe.weight.numpy())


def test_the_filled_text_keeps_the_writers_own_and_only_the_tokens_given() -> None:
    assert fill_in("Pay in [MASK] days to [MASK].", ["thirty", "##s"]) == "Pay in thirty days to s."
    assert fill_in("A [MASK] and a [MASK].", ["cat"]) == "A cat and a [MASK]."


def test_sample_texts_mask_one_word_each_where_the_model_reads(trained_run: Path) -> None:
    predictor = Predictor(trained_run, device="cpu")
    for sample in predictor.sample_inputs(12):
        assert sample.count("[MASK]") == 1
        assert len(predictor.predict(sample)["masks"]) == 1  # not past max_length tokens
    text = "Payment is due within thirty days of the invoice date"
    assert mask_a_word(text, 0, lambda word: 1, max_tokens=4) == text.replace("Payment", "[MASK]")
    assert "(in [MASK] days)." in mask_a_word("Pay (in thirty days).", 0, lambda word: 1)


def test_runner_predict_prints_the_filled_text_and_each_masks_tokens(trained_run: Path) -> None:
    result = run_cli("predict", "--run", str(trained_run), TEXT, "--top-k", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("The courts of ") and "[MASK] 1:" in lines[1] and "[MASK] 2:" in lines[2]
    as_json = json.loads(run_cli("predict", "--run", str(trained_run), TEXT, "--json").stdout)
    assert len(as_json["masks"]) == 2 and len(as_json["masks"][0]["top"]) == 5
    bare = run_cli("predict", "--run", str(trained_run), "No mask here.")
    assert bare.returncode == 0 and "write [MASK] where a word goes" in bare.stdout
    empty = run_cli("predict", "--run", str(trained_run), " ")
    assert empty.returncode == 2 and "the text is empty" in empty.stderr
    none = run_cli("predict", "--run", str(trained_run), TEXT, "--top-k", "0")
    assert none.returncode == 2 and none.stderr == "error: top_k must be 1 or more, got 0\n"
