"""The HTTP API over real HTTP, and `runner.py predict`: texts in, labels out, bad input refused."""

from __future__ import annotations

from pathlib import Path

import httpx

from conftest import run_cli, saved_step
from data import BUILTIN_PACKAGES


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
