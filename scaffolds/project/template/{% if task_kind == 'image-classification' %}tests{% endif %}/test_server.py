"""The HTTP API over real HTTP, and `runner.py predict`: images in, labels out, bad input refused."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
import torch
from PIL import Image

from conftest import run_cli, saved_step
from data import TaskData
from predictor import Predictor


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "task": "image-classification",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_an_uploaded_digit_gets_ranked_labels(server_url: str, data: TaskData) -> None:
    image = data.val.image(0)
    response = httpx.post(f"{server_url}/predict?top_k=3", files={"file": ("digit.png", png_bytes(image))})
    assert response.status_code == 200, response.text
    body = response.json()
    probabilities = [entry["probability"] for entry in body["top"]]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    assert body["label"] == body["top"][0]["label"] and body["label"] in data.preprocessor.labels


def test_most_validation_digits_are_labelled_right_over_http(server_url: str, data: TaskData) -> None:
    right = 0
    for index in range(20):
        upload = {"file": ("digit.png", png_bytes(data.val.image(index)))}
        label = httpx.post(f"{server_url}/predict", files=upload).json()["label"]
        right += label == data.preprocessor.labels[data.val[index][1]]
    assert right >= 10  # far above chance (2 of 20) after a short run


def test_a_bad_top_k_gets_422(server_url: str) -> None:
    upload = {"file": ("digit.png", png_bytes(Image.new("L", (8, 8))))}
    response = httpx.post(f"{server_url}/predict?top_k=0", files=upload)
    assert response.status_code == 422 and "top_k" in response.json()["detail"]


def test_runner_predict_labels_image_files(trained_run: Path, data: TaskData, tmp_path: Path) -> None:
    data.val.image(0).save(tmp_path / "digit.png")
    result = run_cli("predict", "--run", str(trained_run), str(tmp_path / "digit.png"))
    assert result.returncode == 0, result.stderr
    assert "digit.png:" in result.stdout
    missing = run_cli("predict", "--run", str(trained_run), str(tmp_path / "none.png"))
    assert missing.returncode == 2 and "cannot read an image" in missing.stderr


def test_the_exported_classifier_gives_the_predictors_probabilities_with_torch_alone(
    trained_run: Path, data: TaskData, tmp_path: Path
) -> None:
    result = run_cli("export", "--run", str(trained_run), "--output", str(tmp_path / "c.pt2"))
    assert result.returncode == 0, result.stderr
    size = data.preprocessor.image_size
    assert f"pixels [batch, 1, {size}, {size}]" in result.stdout and "torch.export.load(" in result.stdout
    assert "Warning" not in result.stderr  # torch's note on weights off the CPU is not for this case
    classifier = torch.export.load(tmp_path / "c.pt2").module()
    predictor = Predictor(trained_run, "cpu")
    images = [data.val.image(index) for index in range(5)]
    for batch in (images[:1], images):  # any batch size
        with torch.no_grad():
            probabilities = classifier(torch.stack([data.preprocessor(image) for image in batch]))
        assert probabilities.shape == (len(batch), len(data.preprocessor.labels))
        for row, image in zip(probabilities, batch, strict=True):
            expected = predictor.predict(image, top_k=3)["top"]
            best = row.topk(3)
            labels = [data.preprocessor.labels[i] for i in best.indices.tolist()]
            assert labels == [entry["label"] for entry in expected]
            assert best.values.tolist() == pytest.approx([e["probability"] for e in expected], abs=1e-5)
    body = json.loads(
        run_cli("export", "--run", str(trained_run), "--output", str(tmp_path / "c.pt2"), "--json").stdout
    )
    assert body["bytes"] == (tmp_path / "c.pt2").stat().st_size and body["labels"] == data.preprocessor.labels
    assert body["input"] == [1, size, size] and body["inverted_when_light"] is True
