"""The HTTP API over real HTTP, retrieval, and `runner.py predict`: questions in, answers quoted
from a passage (or an abstention) out, bad input refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from conftest import run_cli, saved_step
from data import PASSAGES_FILE
from predictor import PassageIndex, Predictor

QUESTION = "How long is the warranty of the Solace S78 label printer?"


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return Predictor(trained_run, device="cpu")


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "task": "question-answering",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_a_question_is_answered_from_the_passage_retrieval_finds(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict", json={"question": QUESTION})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["question"] == QUESTION and len(body["retrieved"]) == 3
    assert body["title"] == body["retrieved"][0]["title"] == "Solace S78 label printer: Warranty"
    if body["abstained"]:
        assert body["answer"] == "" and "start" not in body
    else:  # quoted from the passage, never made up
        assert body["context"][body["start"] : body["end"]] == body["answer"] != ""


def test_a_question_is_answered_from_a_given_passage(server_url: str) -> None:
    context = "Keep this manual. The unit weighs 2.4 kg. Do not immerse it in water."
    body = httpx.post(
        f"{server_url}/predict", json={"question": "How heavy is it?", "context": context}
    ).json()
    assert body["context"] == context and body["title"] == "" and "retrieved" not in body
    assert body["abstained"] or context[body["start"] : body["end"]] == body["answer"]


def test_an_empty_question_gets_422_naming_the_field(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict", json={"question": ""})
    assert response.status_code == 422 and response.json()["detail"].startswith("question:")
    response = httpx.post(f"{server_url}/predict", json={"question": "Why?", "context": ""})
    assert response.status_code == 422 and response.json()["detail"].startswith("context:")


def test_a_question_no_passage_shares_a_word_with_is_not_answered(predictor: Predictor) -> None:
    result = predictor.predict("Zyxwv qwerty?")
    assert result["abstained"] and result["answer"] == "" and result["retrieved"] == []
    assert set(result) == {"question", "answer", "abstained", "margin", "title", "context", "retrieved"}
    printed = run_cli("predict", "--run", str(predictor.run_dir), "Zyxwv qwerty?")
    assert printed.stdout == "Zyxwv qwerty?: no section shares a word with the question\n"


def test_retrieval_finds_the_section_of_the_device_asked_about(predictor: Predictor) -> None:
    answerable = [q for q in predictor.questions if q.answer]
    found = [predictor.index.search(q.question, 1)[0][0] for q in answerable]
    hits = sum(predictor.index.passages[i][0] == q.title for i, q in zip(found, answerable, strict=True))
    assert hits / len(answerable) >= 0.75
    device = [
        predictor.index.passages[i][0].split(": ")[0] == q.title.split(": ")[0]
        for i, q in zip(found, answerable, strict=True)
    ]
    assert sum(device) / len(device) >= 0.97


def test_a_run_without_saved_passages_reads_them_from_its_data(
    trained_run: Path, predictor: Predictor, tmp_path: Path
) -> None:
    """A run trained before runs saved their passages: the predictor reads the run's data for them,
    and answers as it does from the saved ones."""
    run_dir = tmp_path / trained_run.name
    shutil.copytree(trained_run, run_dir)
    (run_dir / PASSAGES_FILE).unlink()
    older = Predictor(run_dir, device="cpu")
    assert older.index.passages == predictor.index.passages
    assert older.predict(QUESTION) == predictor.predict(QUESTION)
    assert older.questions == predictor.questions


def test_bm25_prefers_rare_words_and_short_passages() -> None:
    index = PassageIndex(
        [
            ("", "the the the kettle"),
            ("", "the warranty lasts two years"),
            ("", "the kettle " + "boils " * 40),
        ]
    )
    assert index.search("warranty", 3) == [(1, pytest.approx(index.search("warranty", 1)[0][1]))]
    ranked = [number for number, _ in index.search("the kettle", 3)]
    assert ranked[0] == 0  # the same words, in a far shorter passage than the third


def test_a_long_passage_is_answered_in_windows(predictor: Predictor) -> None:
    context = "Keep this manual for future reference. " * 60 + "The unit weighs 2.4 kg."
    result = predictor.predict("How much does the unit weigh?", context)
    assert result["abstained"] or context[result["start"] : result["end"]] == result["answer"]


def test_runner_predict_prints_the_answer_and_its_section(trained_run: Path, predictor: Predictor) -> None:
    expected = predictor.predict(QUESTION)
    result = run_cli("predict", "--run", str(trained_run), QUESTION)
    assert result.returncode == 0, result.stderr
    shown = f"no answer in {expected['title']}" if expected["abstained"] else expected["answer"]
    assert result.stdout.startswith(f"{QUESTION}: ") and shown in result.stdout
    assert len(result.stdout.splitlines()) == 1  # one line per question, however long
    as_json = json.loads(run_cli("predict", "--run", str(trained_run), "--json", QUESTION).stdout)
    assert as_json == expected
    given = run_cli("predict", "--run", str(trained_run), "--context", "It weighs 2 kg.", "--json", "Weight?")
    assert json.loads(given.stdout)["context"] == "It weighs 2 kg."
