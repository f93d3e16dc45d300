"""The HTTP API over real HTTP, and `runner.py predict`: an image in, the image masked and restored
and the probe's labels out; bad input refused."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from conftest import run_cli, saved_step
from data import SHAPES, TaskData
from predictor import Predictor


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decoded(png: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB"), dtype=int)


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "task": "image-pretraining",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_an_upload_comes_back_masked_and_restored_with_the_probes_labels(
    server_url: str, data: TaskData
) -> None:
    upload = {"file": ("shape.png", png_bytes(data.val.image(0)))}
    response = httpx.post(f"{server_url}/predict?top_k=3", files=upload, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patches"] == 64 and body["hidden_patches"] == 48 and body["patch_size"] == 4
    seen, masked, restored = (
        decoded(body[name]) for name in ("image_png", "masked_png", "reconstruction_png")
    )
    assert seen.shape == masked.shape == restored.shape == (32, 32, 3)
    # Patch by patch: a hidden one is grey in the masked image, a visible one is the image's own,
    # in the masked and in the restored image alike.
    grey = visible = 0
    for row in range(8):
        for column in range(8):
            square = (slice(4 * row, 4 * row + 4), slice(4 * column, 4 * column + 4))
            if np.all(np.abs(masked[square] - 128) <= 1):
                grey += 1
            else:
                visible += 1
                assert np.abs(restored[square] - seen[square]).max() <= 1
    assert (grey, visible) == (48, 16)
    probabilities = [entry["probability"] for entry in body["top"]]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    assert body["label"] == body["top"][0]["label"] and body["label"] in SHAPES


def test_the_share_hidden_and_the_draw_are_the_callers_to_choose(server_url: str, data: TaskData) -> None:
    upload = png_bytes(data.val.image(1))

    def ask(query: str) -> dict:
        return httpx.post(
            f"{server_url}/predict?{query}", files={"file": ("s.png", upload)}, timeout=60
        ).json()

    assert ask("mask_ratio=0.5")["hidden_patches"] == 32
    assert ask("seed=0")["masked_png"] == ask("seed=0")["masked_png"]
    assert ask("seed=0")["masked_png"] != ask("seed=1")["masked_png"]
    for bad in ("mask_ratio=0", "mask_ratio=1", "mask_ratio=x", "seed=-1", "top_k=0"):
        response = httpx.post(f"{server_url}/predict?{bad}", files={"file": ("s.png", upload)}, timeout=60)
        assert response.status_code == 422 and bad.split("=")[0] in response.json()["detail"]


def test_the_probe_is_fitted_once_and_kept_beside_the_model(trained_run: Path) -> None:
    (trained_run / "probe.pt").unlink(missing_ok=True)
    first = Predictor(trained_run, device="cpu")
    assert (trained_run / "probe.pt").exists()
    again = Predictor(trained_run, device="cpu")
    assert again.probe is not None and first.probe is not None
    assert np.array_equal(again.probe.weight.numpy(), first.probe.weight.numpy())


def test_runner_predict_restores_image_files_and_saves_them_side_by_side(
    trained_run: Path, data: TaskData, tmp_path: Path
) -> None:
    data.val.image(0).save(tmp_path / "shape.png")
    result = run_cli(
        "predict", "--run", str(trained_run), str(tmp_path / "shape.png"), "--out", str(tmp_path / "out")
    )
    assert result.returncode == 0, result.stderr
    assert "shape.png:" in result.stdout and "restored 48 of 64 patches" in result.stdout
    sheet = Image.open(tmp_path / "out" / "shape.png")
    assert sheet.size == (3 * 128 + 2 * 16, 128)  # three panels enlarged 4 times, two gaps
    as_json = run_cli(
        "predict", "--run", str(trained_run), str(tmp_path / "shape.png"), "--json", "--mask-ratio", "0.25"
    )
    assert json.loads(as_json.stdout)["hidden_patches"] == 16
    bad = run_cli("predict", "--run", str(trained_run), str(tmp_path / "shape.png"), "--mask-ratio", "1.5")
    assert bad.returncode == 2 and "mask_ratio must be between 0 and 1" in bad.stderr
    missing = run_cli("predict", "--run", str(trained_run), str(tmp_path / "none.png"))
    assert missing.returncode == 2 and "cannot read an image" in missing.stderr
