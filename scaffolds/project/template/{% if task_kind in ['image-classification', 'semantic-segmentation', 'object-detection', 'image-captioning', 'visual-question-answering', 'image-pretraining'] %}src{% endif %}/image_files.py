"""Opening an image someone hands over (a path on the command line, an upload's bytes) with one
clear error for whatever is not a safe image, shared by the image tasks' predictor and server."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image

from config import ProjectError


class NotAnImage(ProjectError):
    """A missing file, or bytes PIL cannot decode."""


class TooManyPixels(ProjectError):
    """A small file that would decode to gigabytes: PIL refuses it before decoding, with an error
    that is not an OSError, so it needs its own branch."""


# Larger images are refused before any model work (a 4K camera frame has half as many pixels): a
# segmentation's probabilities for one would take gigabytes.
MAX_PIXELS = 4096 * 4096


def refuse_too_many_pixels(image: Image.Image, what: str) -> None:
    """TooManyPixels for a decoded image over MAX_PIXELS; `what` names it ("the chart")."""
    if image.width * image.height > MAX_PIXELS:
        raise TooManyPixels(f"{what} is {image.width}x{image.height}; at most {MAX_PIXELS:,} pixels")


def png_base64(image: Image.Image) -> str:
    """An image as a PNG file in base64 (how the API returns images inside its JSON)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def open_image(source: str | Path | bytes, name: str | None = None) -> Image.Image:
    """The decoded image at a path, or in bytes; `name` is how errors refer to it."""
    name = name or str(source)
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        image.load()
    except Image.DecompressionBombError as error:
        raise TooManyPixels(f"{name} has too many pixels to decode safely: {error}") from None
    except OSError as error:
        raise NotAnImage(f"cannot read an image from {name}: {error}") from None
    return image
