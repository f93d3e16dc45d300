"""Windowed prediction (no seams), the HTTP API over real HTTP, and `runner.py predict`."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from config import ProjectError
from conftest import run_cli, saved_step
from data import TaskData
from predictor import Predictor, window_weights


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return Predictor(trained_run, device="cpu")


def test_window_weights_peak_in_the_middle_and_never_vanish() -> None:
    weights = window_weights(32, 32)
    assert weights.min() > 0 and weights[16, 16] == weights.max() > 10 * weights[0, 0]
    assert torch.equal(weights, weights.T) and torch.equal(weights, weights.flip(0))
    wide = window_weights(16, 40)
    assert wide.shape == (16, 40) and torch.equal(wide, wide.flip(1)) and wide[8, 20] == wide.max()


def test_stitched_windows_match_one_pass_over_the_whole_scene(predictor: Predictor, data: TaskData) -> None:
    """The model is fully convolutional, so one pass over the whole scene is what windows should
    approximate; blending the overlaps keeps the two in agreement on nearly every pixel."""
    image = data.val.image(0)
    stitched = predictor.segment(image, window=32)
    assert len(predictor.window_corners(image.width, image.height, 16, window=32)) > 1
    with torch.no_grad():
        logits, _ = predictor.model(predictor.preprocessor(image)[None])
    whole = logits[0].argmax(dim=0).numpy()
    assert stitched.shape == whole.shape == (image.height, image.width)
    assert (stitched == whole).mean() > 0.95


def seam_ratio(classes: np.ndarray, tile: int, stride: int) -> float:
    """How much likelier a class change is between the two pixels either side of a window border
    than between any two neighbours: near 1 without seams, well above it with them."""
    changes = classes[:, 1:] != classes[:, :-1]  # between column c and c + 1
    borders = [c - 1 for c in range(stride, classes.shape[1] - 1, stride)] + [
        c + tile - 1 for c in range(0, classes.shape[1] - tile, stride)
    ]
    return changes[:, sorted(set(borders))].mean() / max(changes.mean(), 1e-9)


def test_the_stitched_mask_has_no_seams_at_window_borders(predictor: Predictor, data: TaskData) -> None:
    """Blended windows change class at their borders about as often as anywhere else; windows laid
    side by side without overlap (what the blending replaces) change there more, which shows the
    measure would see a seam."""
    tile, overlap = 32, predictor.config.window_overlap
    scenes = [data.val.image(i) for i in range(4)]
    blended = np.mean(
        [seam_ratio(predictor.segment(image, window=tile), tile, tile - overlap) for image in scenes]
    )
    side_by_side = np.mean(
        [seam_ratio(predictor.segment(image, overlap=0, window=tile), tile, tile) for image in scenes]
    )
    assert blended < 1.3 and blended < side_by_side, (blended, side_by_side)


def test_a_prediction_gives_each_class_share_and_a_mask_of_the_image_size(
    predictor: Predictor, data: TaskData
) -> None:
    image = data.val.image(1)
    result = predictor.predict(image)
    assert (result["width"], result["height"]) == image.size and result["windows"] == 1  # it fits one
    shares = {entry["label"]: entry["fraction"] for entry in result["classes"]}
    assert list(shares) == data.preprocessor.labels and sum(shares.values()) == pytest.approx(1.0, abs=1e-4)
    mask = Image.open(io.BytesIO(base64.b64decode(result["mask_png"])))
    assert mask.mode == "P" and mask.size == image.size
    palette = mask.getpalette()[: 3 * len(data.preprocessor.labels)]
    expected = [int(colour[i : i + 2], 16) for colour in data.preprocessor.colours for i in (1, 3, 5)]
    assert palette == expected
    counts = np.bincount(np.asarray(mask).ravel(), minlength=len(shares)) / (image.width * image.height)
    assert counts.tolist() == pytest.approx(list(shares.values()), abs=1e-5)


def test_an_image_larger_than_a_window_is_stitched_from_windows_of_at_most_that_size(
    predictor: Predictor,
) -> None:
    assert predictor.window_shape(600, 300) == (300, 512)  # rows, columns: whole units of 4
    assert predictor.window_corners(600, 300, 16) == [(0, 0), (0, 88)]  # the second flush right
    assert predictor.window_shape(50, 37) == (40, 52)
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 600, 3), dtype=np.uint8))
    assert predictor.predict(image)["windows"] == 2 and predictor.segment(image).shape == (300, 600)
    # A strip tiled along its width only: its 8-pixel rows are one window, whatever the overlap.
    strip = Image.fromarray(np.random.default_rng(2).integers(0, 255, (6, 600, 3), dtype=np.uint8))
    assert predictor.segment(strip).shape == (6, 600)
    with pytest.raises(ProjectError, match="window_overlap must be in"):
        predictor.segment(image, overlap=600)


@pytest.mark.parametrize("size", [(50, 37), (7, 90), (33, 33)])
def test_images_of_any_size_get_a_mask_of_their_own_size(predictor: Predictor, size: tuple[int, int]) -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    assert predictor.segment(image).shape == (size[1], size[0])


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.json() == {
        "status": "ok",
        "task": "semantic-segmentation",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_an_uploaded_scene_gets_its_mask_over_http(server_url: str, data: TaskData) -> None:
    image = data.val.image(0)
    response = httpx.post(
        f"{server_url}/predict", files={"file": ("scene.png", png_bytes(image))}, timeout=60
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == image.size
    assert Image.open(io.BytesIO(base64.b64decode(body["mask_png"]))).size == image.size


def test_an_image_with_too_many_pixels_gets_413(server_url: str) -> None:
    huge = png_bytes(Image.new("RGB", (4200, 4200)))
    response = httpx.post(f"{server_url}/predict", files={"file": ("huge.png", huge)}, timeout=60)
    assert response.status_code == 413 and "pixels" in response.json()["detail"]


def test_runner_predict_writes_masks_and_prints_shares(
    trained_run: Path, data: TaskData, tmp_path: Path
) -> None:
    data.val.image(0).save(tmp_path / "scene.png")
    masks = tmp_path / "masks"
    result = run_cli("predict", "--run", str(trained_run), str(tmp_path / "scene.png"), "--masks", str(masks))
    assert result.returncode == 0, result.stderr
    assert "scene.png:" in result.stdout and "%" in result.stdout
    assert Image.open(masks / "scene.png").size == (256, 256)
    as_json = run_cli("predict", "--run", str(trained_run), str(tmp_path / "scene.png"), "--json")
    body = json.loads(as_json.stdout)
    assert body["input"].endswith("scene.png") and len(body["classes"]) == len(data.preprocessor.labels)
    missing = run_cli("predict", "--run", str(trained_run), str(tmp_path / "none.png"))
    assert missing.returncode == 2 and "cannot read an image" in missing.stderr


def test_the_exported_segmenter_gives_the_predictors_probabilities_with_torch_alone(
    trained_run: Path, predictor: Predictor, data: TaskData, tmp_path: Path
) -> None:
    result = run_cli("export", "--run", str(trained_run), "--output", str(tmp_path / "s.pt2"))
    assert result.returncode == 0, result.stderr
    assert "pixels [batch, 3, height, width]" in result.stdout and "torch.export.load(" in result.stdout
    assert "Warning" not in result.stderr  # torch's note on weights off the CPU is not for this case
    segmenter = torch.export.load(tmp_path / "s.pt2").module()
    scene = data.val.image(0)
    unit = predictor.unit
    for image in (scene, scene.crop((0, 0, 12 * unit, 5 * unit))):  # sides of any multiple of the unit
        with torch.no_grad():
            probabilities = segmenter(data.preprocessor(image)[None])
        assert probabilities.shape == (1, len(data.preprocessor.labels), image.height, image.width)
        assert torch.allclose(probabilities[0], predictor.probabilities(image).cpu(), atol=1e-5)
    with torch.no_grad():  # any batch size
        assert segmenter(torch.stack([data.preprocessor(scene)] * 3)).shape[0] == 3
    largest = predictor.config.window_size // unit * unit
    for height, width in ((unit + 1, unit), (largest + unit, unit)):  # not a multiple; over one window
        with pytest.raises((AssertionError, RuntimeError)), torch.no_grad():
            segmenter(torch.zeros(1, 3, height, width))
    body = json.loads(
        run_cli("export", "--run", str(trained_run), "--output", str(tmp_path / "s.pt2"), "--json").stdout
    )
    assert body["bytes"] == (tmp_path / "s.pt2").stat().st_size and body["labels"] == data.preprocessor.labels
    assert body["side_unit"] == unit and body["largest_side"] == largest
