"""Pages drawn as scanned images: what an invoice looks like before OCR reads it.

Each word is drawn into its own box (the GRID scaled to the image), so that an OCR engine reading
the image finds the words about where the built-in invoices put them. `python src/data.py
examples/ 5 --scans` writes such scans (a TIFF of one image a page) beside the .json files; with
tesseract installed, `runner.py predict examples/invoice-....tif` reads one end to end, as the
tests do.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from data import GRID, Page, ink_extent

SIDE = 1400  # pixels: the drawn page is SIDE x SIDE (the GRID's 0-1000 in x and in y)
FONT_FILES = (  # the first one there is used; else Pillow's own font
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:/Windows/Fonts/arial.ttf",
)


@functools.cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_FILES:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def draw_word(word: str, width: int, height: int) -> Image.Image:
    """The word black on white, its line (the font's ascent and descent) scaled to width x height
    pixels: every word's baseline and letter heights agree, as in print. (Stretching each word's
    own ink to its box instead drew a lone "4" that tesseract read as "=~".)"""
    face = font(64)
    ascent, descent = face.getmetrics()
    canvas = Image.new("L", (max(1, round(face.getlength(word))) + 2, ascent + descent), 255)
    ImageDraw.Draw(canvas).text((1, 0), word, font=face, fill=0)
    return canvas.resize((max(width, 1), max(height, 1)), Image.Resampling.LANCZOS)


def draw_scan(page: Page, side: int = SIDE, seed: int = 0) -> Image.Image:
    """The page as a greyscale scan: its words in their boxes, a little blur and speckle."""
    image = Image.new("L", (side, side), 255)
    for word, (x0, y0, x1, y1) in zip(page.words, page.boxes, strict=True):
        # The box is the ink's; the word is drawn with its whole line of type around it.
        top, bottom = ink_extent(word)
        line = (y1 - y0) / (bottom - top)
        left, right = round(x0 * side / GRID), round(x1 * side / GRID)
        line_top, line_bottom = (round((y0 + share * line) * side / GRID) for share in (-top, 1 - top))
        image.paste(draw_word(word, right - left, line_bottom - line_top), (left, line_top))
    image = image.filter(ImageFilter.GaussianBlur(0.6))
    rng = random.Random(seed)
    pixels = image.load()
    for _ in range(side * side // 2000):  # dust
        x, y = rng.randrange(side), rng.randrange(side)
        pixels[x, y] = rng.randrange(160, 230)  # light grey: never as dark as ink
    return image


def save_scan(pages: list[Page], path: Path) -> Path:
    """The pages as one scanned TIFF, a page an image (tesseract reads each as a page)."""
    images = [draw_scan(page, seed=number) for number, page in enumerate(pages, 1)]
    images[0].save(path, save_all=True, append_images=images[1:], compression="tiff_lzw", dpi=(150, 150))
    return path
