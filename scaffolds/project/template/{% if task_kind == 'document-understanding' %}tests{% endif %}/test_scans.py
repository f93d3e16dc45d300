"""Scanned pages: drawn from an invoice's words and boxes, read back by tesseract (where it is
installed) into about the same words in about the same places, and through the predictor."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from data import GRID, Page, builtin_invoices, builtin_split, in_reading_order
from predictor import Predictor, ocr_image, pages_from_tesseract_tsv
from scans import SIDE, draw_scan, save_scan

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")


def first_invoice(pages: int) -> list[Page]:
    return next(i.pages for i in builtin_split(builtin_invoices())[1] if len(i.pages) == pages)


def test_words_are_drawn_inside_their_boxes_only() -> None:
    page = first_invoice(1)[0]
    image = draw_scan(page, seed=0)
    assert image.size == (SIDE, SIDE) and image.mode == "L"
    ink = ImageOps.invert(image).point(lambda value: 255 if value > 128 else 0)
    inside = Image.new("L", image.size, 0)
    for x0, y0, x1, y1 in page.boxes:
        # ink_extent's shares are a sans font's, not this one's exactly: a unit or two of slack.
        inside.paste(255, tuple(round(v * SIDE / GRID) for v in (x0 - 2, y0 - 2, x1 + 2, y1 + 2)))
    outside = Image.composite(Image.new("L", image.size, 0), ink, inside)
    assert ink.histogram()[255] > 20 * len(page.words)  # every word leaves ink
    assert outside.histogram()[255] == 0  # dust is grey, never black


def test_reading_order_is_lines_top_down_then_left_to_right() -> None:
    boxes = [(500, 100, 560, 114), (100, 102, 160, 116), (100, 140, 160, 154)]
    page = Page(["b", "a", "c"], boxes, ["O"] * 3)
    ordered = in_reading_order(page)
    assert ordered.words == ["a", "b", "c"] and ordered.boxes[0] == (100, 102, 160, 116)


@needs_tesseract
def test_tesseract_reads_a_scan_back_into_the_words_and_boxes_drawn(tmp_path: Path) -> None:
    pages = first_invoice(2)
    scan = save_scan(pages, tmp_path / "invoice.tif")
    read = pages_from_tesseract_tsv(ocr_image(scan), scan.name)
    assert len(read) == 2
    for drawn, ocr in zip(pages, read, strict=True):
        places: dict[str, list[tuple[int, ...]]] = {}
        for word, box in zip(drawn.words, drawn.boxes, strict=True):
            places.setdefault(word, []).append(box)
        found = [(word, box) for word, box in zip(ocr.words, ocr.boxes, strict=True) if word in places]
        assert len(found) >= 0.9 * len(drawn.words)  # read as drawn, letter for letter

        # How far each word read is from the nearest place the word was drawn at (grid units).
        def distance(box: tuple[int, ...], place: tuple[int, ...]) -> int:
            return max(abs(a - b) for a, b in zip(box, place, strict=True))

        off = [min(distance(box, place) for place in places[word]) for word, box in found]
        assert sum(units <= 4 for units in off) >= 0.95 * len(found)


@needs_tesseract
def test_the_predictor_reads_a_scanned_tiff_as_one_invoice(trained_run: Path, tmp_path: Path) -> None:
    scan = save_scan(first_invoice(2), tmp_path / "invoice.tif")
    predictor = Predictor(trained_run, device="cpu")
    result = predictor.predict(predictor.read_input(str(scan)))
    assert result["pages"] == 2 and all(result["words"][n] for n in (0, 1))


@needs_tesseract
def test_an_image_tesseract_cannot_read_is_one_line(trained_run: Path, tmp_path: Path) -> None:
    from conftest import run_cli

    broken = tmp_path / "scan.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = run_cli("predict", "--run", str(trained_run), str(broken))
    assert result.returncode == 2 and "tesseract could not read scan.png" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
