"""Answers from the predictor, and the HTTP API over real HTTP: a chart and a question in, ranked
answers out, bad input refused with a one-line reason."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from config import ProjectError
from conftest import run_cli, saved_step
from data import TaskData
from predictor import MAX_QUESTION_CHARACTERS, ChartQuestion, Predictor


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def ask(server_url: str, chart: bytes, question: str | None, **params: object) -> httpx.Response:
    """POST /predict as the playground and curl send it: the chart as a file, the question as a field."""
    fields = {} if question is None else {"question": question}
    upload = {"file": ("chart.png", chart, "image/png")}
    return httpx.post(f"{server_url}/predict", files=upload, data=fields, params=params, timeout=60)


def assert_one_line(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and all(word in detail for word in words), detail


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return Predictor(trained_run, device="cpu")


def test_an_answer_is_one_of_the_runs_answers_with_the_next_likeliest(
    predictor: Predictor, data: TaskData
) -> None:
    result = predictor.predict(ChartQuestion(data.val.image(0), data.val.question(0).text))
    assert result["question"] == data.val.question(0).text
    ranked = [result, *result["alternatives"]]
    assert len(ranked) == 5 and len({entry["answer"] for entry in ranked}) == 5
    assert all(entry["answer"] in predictor.preprocessor.answers for entry in ranked)
    probabilities = [entry["probability"] for entry in ranked]
    assert probabilities == sorted(probabilities, reverse=True) and all(p >= 0 for p in probabilities)
    assert sum(probabilities) <= 1 + 5e-4  # each rounded to 4 places
    one = predictor.predict(ChartQuestion(data.val.image(0), data.val.question(0).text), top=1)
    assert one["alternatives"] == [] and one["answer"] == result["answer"]


def test_a_chart_of_another_size_or_mode_gets_an_answer(predictor: Predictor, data: TaskData) -> None:
    chart = data.val.image(1)
    question = data.val.question(1).text
    for image in (chart.resize((300, 200), Image.BILINEAR), chart.convert("L"), chart.convert("RGBA")):
        assert predictor.predict(ChartQuestion(image, question))["answer"] in predictor.preprocessor.answers


def test_the_predictor_refuses_an_empty_or_overlong_question(predictor: Predictor, data: TaskData) -> None:
    chart = data.val.image(0)
    with pytest.raises(ProjectError, match="empty"):
        predictor.predict(ChartQuestion(chart, "  \n "))
    with pytest.raises(ProjectError, match="characters"):
        predictor.predict(ChartQuestion(chart, "why " * MAX_QUESTION_CHARACTERS))


def test_runner_predict_answers_each_chart(
    trained_run: Path, predictor: Predictor, data: TaskData, tmp_path: Path
) -> None:
    """`runner.py predict CHART... --question Q`: the predictor's answer for each chart, as JSON and
    as a line naming the chart; without a question, argparse's usage line."""
    question = data.val.question(0).text
    charts = [tmp_path / "first.png", tmp_path / "second.png"]
    for index, chart in enumerate(charts):
        data.val.image(index).save(chart)
    result = run_cli(
        "predict", "--run", str(trained_run), *map(str, charts), "--question", question, "--json"
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    for chart, answer in zip(charts, answers, strict=True):
        expected = predictor.predict(ChartQuestion(Image.open(chart), question), top=3)
        assert answer == {"input": str(chart), **expected}
    shown = run_cli("predict", "--run", str(trained_run), str(charts[0]), "-q", question)
    assert shown.returncode == 0 and shown.stdout.startswith(f"{charts[0]}: {answers[0]['answer']} ")
    with pytest.raises(SystemExit) as unasked:  # argparse's usage line, then exit status 2
        run_cli("predict", "--run", str(trained_run), str(charts[0]))
    assert unasked.value.code == 2


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "task": "visual-question-answering",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_a_chart_and_a_question_get_the_predictors_answer(
    server_url: str, predictor: Predictor, data: TaskData
) -> None:
    chart = png_bytes(data.val.image(2))
    question = data.val.question(2).text
    response = ask(server_url, chart, question)
    assert response.status_code == 200, response.text
    # The predictor's answer for the same bytes, decoded as the server decodes them.
    expected = predictor.predict(ChartQuestion(Image.open(io.BytesIO(chart)), question))
    assert response.json() == expected
    fewer = ask(server_url, chart, question, top=2).json()
    assert fewer["answer"] == expected["answer"] and fewer["alternatives"] == expected["alternatives"][:1]


def test_an_empty_or_missing_question_gets_422(server_url: str, data: TaskData) -> None:
    chart = png_bytes(data.val.image(0))
    assert_one_line(ask(server_url, chart, ""), 422, "question")  # an empty form field counts as missing
    assert_one_line(ask(server_url, chart, None), 422, "question")
    assert_one_line(ask(server_url, chart, "   "), 422, "question is empty")
    too_long = "x" * (MAX_QUESTION_CHARACTERS + 1)
    assert_one_line(ask(server_url, chart, too_long), 422, "question", str(MAX_QUESTION_CHARACTERS))


def test_a_bad_top_gets_422(server_url: str, data: TaskData) -> None:
    chart = png_bytes(data.val.image(0))
    for top in (0, 21):
        assert_one_line(ask(server_url, chart, "How many bars are there?", top=top), 422, "top")


def test_a_file_that_is_not_an_image_gets_415(server_url: str) -> None:
    assert_one_line(ask(server_url, b"hello", "How many bars are there?"), 415, "not an image")


def test_a_chart_with_too_many_pixels_gets_413(server_url: str) -> None:
    huge = png_bytes(Image.new("RGB", (4200, 4200), "white"))
    assert_one_line(ask(server_url, huge, "How many bars are there?"), 413, "pixels")
