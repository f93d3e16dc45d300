"""A trained run's model reading one invoice at a time (for `runner.py predict`, the server, and
the latency that `runner.py check` measures).

An invoice arrives as OCR output: its pages' words and boxes, as a .json file (see data.py), as
the .tsv that `tesseract scan.png scan tsv` writes, or as a scanned image when the tesseract
program is installed (it is then read here, on this machine: the invoice goes nowhere else).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import torch

from config import ProjectError
from data import GRID, Invoice, Page, in_reading_order, invoice_from_json, read_splits
from extraction import extract
from trainer import TrainedModel

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".pnm"}
TESSERACT_SECONDS = 120
# Page segmentation mode 6, one block of text: an invoice's rows are read across the page, so a
# line item's quantity stays with its line. On the built-in scans it found 97% of the words and
# 99% of the one- and two-digit numbers, against 94% and 72% with tesseract's automatic mode.
TESSERACT_OPTIONS = ("--psm", "6")
# tesseract's OpenMP threads contend with each other on a page this size: one thread read a
# built-in scan in 0.8 s on a 2-core CPU, the default in 7.8 s. OMP_THREAD_LIMIT set by the user wins.
TESSERACT_THREADS = "1"


def pages_from_tesseract_tsv(text: str, where: str) -> list[Page]:
    """The pages of tesseract's TSV output: its word rows (level 5) in reading order, boxes scaled
    from the page's pixels (its level-1 row) to the GRID."""
    sizes: dict[int, tuple[int, int]] = {}
    words: dict[int, list[tuple[str, tuple[int, int, int, int]]]] = {}
    try:
        for row in csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE):
            level, page = int(row["level"]), int(row["page_num"])
            left, top, width, height = (int(row[name]) for name in ("left", "top", "width", "height"))
            if level == 1:
                sizes[page] = (max(width, 1), max(height, 1))
            elif level == 5 and (row.get("text") or "").strip():
                words.setdefault(page, []).append(
                    (row["text"].strip(), (left, top, left + width, top + height))
                )
    except (KeyError, TypeError, ValueError):
        raise ProjectError(
            f"{where} is not tesseract TSV output (level, page_num, left, top ... text)"
        ) from None
    pages = []
    for number in sorted(words):
        page_width, page_height = sizes.get(number, (GRID, GRID))
        boxes = [
            tuple(
                min(GRID, max(0, round(v * GRID / size)))
                for v, size in zip(box, (page_width, page_height) * 2, strict=True)
            )
            for _, box in words[number]
        ]
        pages.append(in_reading_order(Page([word for word, _ in words[number]], boxes)))  # type: ignore[arg-type]
    if not pages:
        raise ProjectError(f"{where} holds no words")
    return pages


def ocr_image(path: Path) -> str:
    """tesseract's TSV of a scanned page (run here, as an argument list: no shell)."""
    program = shutil.which("tesseract")
    if program is None:
        raise ProjectError(
            f"reading the scan {path.name} needs the tesseract program (apt install tesseract-ocr);"
            " or pass OCR output: a .json of words and boxes, or tesseract's .tsv"
        )
    try:
        done = subprocess.run(
            [program, str(path), "stdout", *TESSERACT_OPTIONS, "tsv"],
            capture_output=True,
            text=True,
            timeout=TESSERACT_SECONDS,
            env={"OMP_THREAD_LIMIT": TESSERACT_THREADS, **os.environ},
        )
    except subprocess.TimeoutExpired:
        raise ProjectError(f"tesseract took over {TESSERACT_SECONDS} s on {path.name}") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ProjectError(f"tesseract could not read {path.name}: {reason}")
    return done.stdout


class Predictor(TrainedModel):
    @torch.no_grad()
    def tag_page(self, page: Page) -> tuple[list[str], list[float]]:
        """Each word's tag and its probability. A page of more than max_length words is read in
        consecutive windows, so every word gets a tag."""
        tags: list[str] = []
        confidence: list[float] = []
        if not page.words:  # a blank page: nothing to tag
            return tags, confidence
        for start in self.preprocessor.window_starts(page):
            encoded = self.preprocessor.encode(page, start)
            inputs = tuple(part[None].to(self.device) for part in encoded)
            logits, _ = self.model(inputs)
            best = logits.float().softmax(dim=-1)[0].max(dim=-1)
            count = min(len(page.words) - start, best.indices.shape[0])
            tags += [self.preprocessor.labels[i] for i in best.indices[:count].tolist()]
            confidence += best.values[:count].tolist()
        return tags, confidence

    def predict(self, invoice: Invoice) -> dict[str, object]:
        """The invoice's fields (see extraction.extract), and every word with its tag."""
        tagged = [self.tag_page(page) for page in invoice.pages]
        result = extract(invoice.pages, [tags for tags, _ in tagged], [scores for _, scores in tagged])
        result["words"] = [
            [
                {"text": w, "box": list(box), "tag": tag}
                for w, box, tag in zip(page.words, page.boxes, tags, strict=True)
            ]
            for page, (tags, _) in zip(invoice.pages, tagged, strict=True)
        ]
        return result

    def read_input(self, argument: str) -> Invoice:
        """A command-line argument is a file: an invoice's .json, tesseract's .tsv, or a scan."""
        path = Path(argument).expanduser()
        if not path.is_file():
            raise ProjectError(f"no such file: {argument}")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return Invoice(pages_from_tesseract_tsv(ocr_image(path), path.name), name=path.stem)
        if path.suffix.lower() == ".tsv":
            return Invoice(pages_from_tesseract_tsv(path.read_text(), path.name), name=path.stem)
        if path.suffix.lower() != ".json":
            raise ProjectError(
                f"cannot read {path.name}: pass an invoice's .json, tesseract's .tsv or a scan"
            )
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ProjectError(f"{path.name} is not valid JSON ({error})") from None
        return invoice_from_json(record, path.name)

    def sample_inputs(self, count: int) -> list[Invoice]:
        """Validation invoices, for timing predictions and the playground's examples."""
        invoices = read_splits(self.config)[1]  # the invoices only: nothing to fit or encode
        return [invoices[i % len(invoices)] for i in range(count)]
