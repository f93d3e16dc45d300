"""Detection in a frame's own pixels, the HTTP API over real HTTP, and `runner.py predict`."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
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


def frame(data: TaskData, index: int, size: tuple[int, int] | None = None) -> Image.Image:
    image = Image.fromarray(data.val.frames[index][0])
    return image.resize(size, Image.BILINEAR) if size else image


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return Predictor(trained_run, device="cpu")


def test_boxes_come_back_in_the_frames_own_pixels(predictor: Predictor, data: TaskData) -> None:
    """The same frame at its own size and at 4x: the same detections, their boxes 4x apart."""
    small = predictor.detect(frame(data, 0), min_score=0.05)
    large = predictor.detect(frame(data, 0, (1280, 720)), min_score=0.05)
    assert small, "a briefly trained detector still proposes something at a low score"
    pairs = list(zip(small[:5], large[:5], strict=False))
    for little, big in pairs:
        assert little["label"] == big["label"]
        assert big["box"] == pytest.approx([4 * v for v in little["box"]], abs=12)


def test_a_prediction_lists_boxes_best_first_above_the_threshold_with_counts(
    predictor: Predictor, data: TaskData
) -> None:
    image = frame(data, 1, (1280, 720))
    result = predictor.predict(image)
    assert (result["width"], result["height"]) == (1280, 720)
    assert result["threshold"] == predictor.preprocessor.score_threshold
    scores = [box["score"] for box in result["boxes"]]
    assert scores == sorted(scores, reverse=True) and all(s >= result["threshold"] for s in scores)
    for box in result["boxes"]:
        x0, y0, x1, y1 = box["box"]
        assert 0 <= x0 <= x1 <= 1280 and 0 <= y0 <= y1 <= 720
        assert all(isinstance(value, float) for value in box["box"])  # 720.0, never 720, in JSON
        assert (
            box["colour"] == predictor.preprocessor.colours[predictor.preprocessor.labels.index(box["label"])]
        )
    assert result["counts"] == {
        label: sum(box["label"] == label for box in result["boxes"])
        for label in predictor.preprocessor.labels
    }


@pytest.mark.parametrize("size", [(50, 37), (7, 90), (1920, 1080)])
def test_frames_of_any_size_are_read(predictor: Predictor, size: tuple[int, int]) -> None:
    boxes = predictor.detect(Image.new("RGB", size, (120, 120, 120)), min_score=0.0)
    assert all(0 <= box["box"][2] <= size[0] and 0 <= box["box"][3] <= size[1] for box in boxes)


def test_the_exported_detector_finds_what_the_predictor_finds_with_torch_alone(
    predictor: Predictor, data: TaskData, tmp_path: Path
) -> None:
    saved = predictor.export(tmp_path / "detector.pt2")
    assert saved["input"] == [3, predictor.preprocessor.input_height, predictor.preprocessor.input_width]
    detector = torch.export.load(tmp_path / "detector.pt2").module()
    images = [frame(data, index, (1280, 720)) for index in range(3)]
    pixels = torch.stack([predictor.preprocessor.pixels(image)[0] for image in images])
    with torch.no_grad():
        scores, labels, boxes = detector(pixels)  # one batch of three frames
    assert scores.shape == labels.shape == (3, 100) and boxes.shape == (3, 100, 4)
    for index, image in enumerate(images):
        expected = predictor.detect(image, min_score=0.05)
        kept = scores[index] >= 0.05
        scale = predictor.preprocessor.fit(image.width, image.height)
        assert [predictor.preprocessor.labels[i] for i in labels[index][kept].tolist()] == [
            box["label"] for box in expected
        ]
        assert scores[index][kept].tolist() == pytest.approx([box["score"] for box in expected], abs=1e-4)
        # In the frame's pixels and inside it, as the predictor reports them.
        limits = (image.width, image.height) * 2
        corners = [
            min(max(value, 0.0), limit)
            for box in (boxes[index][kept] / scale).tolist()
            for value, limit in zip(box, limits, strict=True)
        ]
        assert corners == pytest.approx([value for box in expected for value in box["box"]], abs=0.1)


def test_runner_export_names_the_input_and_how_to_load_it(trained_run: Path, tmp_path: Path) -> None:
    result = run_cli("export", "--run", str(trained_run), "--output", str(tmp_path / "d.pt2"))
    assert result.returncode == 0, result.stderr
    assert "pixels [batch, 3, 96, 160]" in result.stdout and "torch.export.load(" in result.stdout
    assert "Warning" not in result.stderr  # torch's note on weights off the CPU is not for this case
    body = json.loads(
        run_cli("export", "--run", str(trained_run), "--output", str(tmp_path / "d.pt2"), "--json").stdout
    )
    assert body["bytes"] == (tmp_path / "d.pt2").stat().st_size and body["labels"] == ["person", "forklift"]


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.json() == {
        "status": "ok",
        "task": "object-detection",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_a_720p_frame_posted_gets_boxes_classes_and_scores(
    server_url: str, predictor: Predictor, data: TaskData
) -> None:
    """The spec's acceptance criterion, over real HTTP: what the predictor finds in the frame."""
    image = frame(data, 0, (1280, 720))
    response = httpx.post(
        f"{server_url}/predict", files={"file": ("frame.png", png_bytes(image))}, timeout=60
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (1280, 720)
    assert body["boxes"] == predictor.predict(image)["boxes"]
    assert all({"label", "score", "box", "colour"} <= box.keys() for box in body["boxes"])


def test_under_load_every_request_gets_its_own_frames_boxes(server_url: str, data: TaskData) -> None:
    """The spec's load test: 8 clients at once, 32 requests over 4 different frames, through the
    server's thread pool and the one model it shares; each answer is the one its frame gets alone."""
    frames = [png_bytes(frame(data, index, (1280, 720))) for index in range(4)]

    def boxes(body: bytes) -> list[dict]:
        response = httpx.post(f"{server_url}/predict", files={"file": ("frame.png", body)}, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()["boxes"]

    alone = [boxes(body) for body in frames]
    with ThreadPoolExecutor(max_workers=8) as clients:
        loaded = list(clients.map(boxes, [frames[i % 4] for i in range(32)]))
    assert all(answer == alone[i % 4] for i, answer in enumerate(loaded))


def test_a_frame_with_too_many_pixels_gets_413(server_url: str) -> None:
    huge = png_bytes(Image.new("RGB", (4200, 4200)))
    response = httpx.post(f"{server_url}/predict", files={"file": ("huge.png", huge)}, timeout=60)
    assert response.status_code == 413 and "pixels" in response.json()["detail"]


def test_runner_predict_draws_boxes_and_prints_them(
    trained_run: Path, data: TaskData, tmp_path: Path
) -> None:
    frame(data, 0).save(tmp_path / "frame.png")
    drawn = tmp_path / "drawn"
    args = ("predict", "--run", str(trained_run), str(tmp_path / "frame.png"))
    result = run_cli(*args, "--boxes", str(drawn))
    assert result.returncode == 0, result.stderr
    assert "frame.png:" in result.stdout and "person" in result.stdout
    assert Image.open(drawn / "frame.png").size == (320, 180)
    body = json.loads(run_cli(*args, "--json").stdout)
    assert body["input"].endswith("frame.png") and set(body["counts"]) == set(data.preprocessor.labels)
    missing = run_cli("predict", "--run", str(trained_run), str(tmp_path / "none.png"))
    assert missing.returncode == 2 and "cannot read an image" in missing.stderr
