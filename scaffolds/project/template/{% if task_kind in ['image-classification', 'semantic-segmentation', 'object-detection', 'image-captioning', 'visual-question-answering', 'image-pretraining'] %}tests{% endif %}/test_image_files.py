"""Images handed over by path or as bytes (the command line, an upload to the server): decoded, or
refused with one line a user can act on."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from config import TASK_KIND
from conftest import run_cli
from image_files import NotAnImage, TooManyPixels, open_image, png_base64

# A chart question answering model is asked a question about each image too.
ASKED = TASK_KIND == "visual-question-answering"
QUESTION_ARGS = ("--question", "How many bars are there?") if ASKED else ()
QUESTION_FIELDS = {"question": "How many bars are there?"} if ASKED else {}


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_image_opens_from_a_path_and_from_bytes(tmp_path: Path) -> None:
    picture = Image.new("RGB", (12, 7), (200, 30, 40))
    picture.save(tmp_path / "red.png")
    for source in (tmp_path / "red.png", str(tmp_path / "red.png"), png_bytes(picture)):
        image = open_image(source)
        assert image.size == (12, 7) and image.convert("RGB").getpixel((3, 3)) == (200, 30, 40)


def test_an_image_goes_into_json_as_base64_png_and_comes_back_the_same() -> None:
    picture = Image.new("RGB", (5, 3), (10, 200, 30))
    encoded = png_base64(picture)
    back = open_image(base64.b64decode(encoded))
    assert back.format == "PNG" and back.size == (5, 3) and back.getpixel((4, 2)) == (10, 200, 30)


def test_what_is_not_an_image_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not pixels")
    with pytest.raises(NotAnImage, match=r"cannot read an image from .*notes\.txt"):
        open_image(tmp_path / "notes.txt")
    with pytest.raises(NotAnImage, match=r"cannot read an image from .*missing\.png"):
        open_image(tmp_path / "missing.png")
    with pytest.raises(NotAnImage, match="cannot read an image from the upload"):
        open_image(b"GIF89a but then nothing", "the upload")


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    """A few kB of PNG that would decode to more pixels than PIL allows at all: PIL raises an
    error that is not an OSError for it, which must still end as one line, not a traceback."""
    (tmp_path / "bomb.png").write_bytes(png_bytes(Image.new("1", (15000, 15000))))
    assert (tmp_path / "bomb.png").stat().st_size < 100_000
    with pytest.raises(TooManyPixels, match=r"bomb\.png has too many pixels"):
        open_image(tmp_path / "bomb.png")


def test_runner_predict_refuses_a_decompression_bomb_in_one_line(trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(png_bytes(Image.new("1", (15000, 15000))))
    result = run_cli("predict", "--run", str(trained_run), str(tmp_path / "bomb.png"), *QUESTION_ARGS)
    assert result.returncode == 2 and "too many pixels" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_upload_that_is_not_an_image_gets_415_with_a_reason(server_url: str) -> None:
    response = httpx.post(
        f"{server_url}/predict", files={"file": ("notes.txt", b"not a picture")}, data=QUESTION_FIELDS
    )
    assert response.status_code == 415 and "not an image" in response.json()["detail"]


def test_an_uploaded_decompression_bomb_gets_413_not_a_crash(server_url: str) -> None:
    bomb = png_bytes(Image.new("1", (15000, 15000)))
    response = httpx.post(
        f"{server_url}/predict", files={"file": ("bomb.png", bomb)}, data=QUESTION_FIELDS, timeout=60
    )
    assert response.status_code == 413 and "too many pixels" in response.json()["detail"]


def test_a_request_without_a_file_gets_422_naming_the_field(server_url: str) -> None:
    response = httpx.post(f"{server_url}/predict")
    assert response.status_code == 422 and response.json()["detail"].startswith("file:")
