"""Captions from the predictor, the HTTP API over real HTTP, and `runner.py predict`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from PIL import Image

from conftest import run_cli, saved_step
from data import TaskData
from predictor import Predictor


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return Predictor(trained_run, device="cpu")


def test_a_caption_is_one_sentence_of_at_most_max_words_with_the_other_beams(
    predictor: Predictor, data: TaskData
) -> None:
    result = predictor.predict(data.val.image(0))
    caption = result["caption"]
    assert isinstance(caption, str) and result["words"] == len(caption.split())
    assert 0 < result["words"] <= predictor.preprocessor.max_words
    assert "<" not in caption  # no special tokens written out
    scores = [other["log_probability"] for other in result["alternatives"]]
    assert len(scores) == predictor.config.beam_size - 1 and scores == sorted(scores, reverse=True)
    assert predictor.predict(data.val.image(0), beams=1)["alternatives"] == []


def test_the_same_photo_at_any_size_gets_a_caption(predictor: Predictor, data: TaskData) -> None:
    large = data.val.image(1).resize((640, 480), Image.BILINEAR)
    grey = data.val.image(1).convert("L")
    for image in (large, grey):
        assert predictor.predict(image)["words"] > 0


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "task": "image-captioning",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_an_uploaded_photo_gets_the_predictors_caption(
    server_url: str, predictor: Predictor, data: TaskData
) -> None:
    image = data.val.image(2)
    response = httpx.post(
        f"{server_url}/predict", files={"file": ("photo.png", png_bytes(image))}, timeout=60
    )
    assert response.status_code == 200, response.text
    assert response.json() == predictor.predict(image)


def test_a_photo_with_too_many_pixels_gets_413(server_url: str) -> None:
    huge = png_bytes(Image.new("RGB", (4200, 4200)))
    response = httpx.post(f"{server_url}/predict", files={"file": ("huge.png", huge)}, timeout=60)
    assert response.status_code == 413 and "pixels" in response.json()["detail"]


def test_runner_predict_prints_captions(trained_run: Path, data: TaskData, tmp_path: Path) -> None:
    data.val.image(0).save(tmp_path / "photo.png")
    args = ("predict", "--run", str(trained_run), str(tmp_path / "photo.png"))
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    body = json.loads(run_cli(*args, "--json").stdout)
    assert body["input"].endswith("photo.png")
    assert f"photo.png: {body['caption']}" in " ".join(result.stdout.split())
    missing = run_cli("predict", "--run", str(trained_run), str(tmp_path / "none.png"))
    assert missing.returncode == 2 and "cannot read an image" in missing.stderr
    negative = run_cli(*args, "--beams", "-1")
    assert negative.returncode == 2 and "beams must be 1 or more" in negative.stderr
