"""The HTTP API over real HTTP, and `runner.py predict`: OCR'd invoices in, fields out in the shape
GET /schema describes, tesseract's TSV read, bad input refused in one line."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import httpx
import pytest

from conftest import run_cli, saved_step
from data import GRID, builtin_invoices, builtin_split, write_examples
from predictor import Predictor, pages_from_tesseract_tsv

FIELDS = {
    "vendor",
    "invoice_number",
    "date",
    "subtotal",
    "tax",
    "total",
    "currency",
    "line_items",
    "flags",
    "checks",
    "pages",
    "fields",
}
# Two words of tesseract's TSV for a page of 2,000 x 1,000 pixels (levels 1 to 4 are the page,
# block, paragraph and line; 5 a word).
TSV = "\n".join(
    [
        "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext",
        "1\t1\t0\t0\t0\t0\t0\t0\t2000\t1000\t-1\t",
        "4\t1\t1\t1\t1\t0\t100\t200\t300\t20\t-1\t",
        "5\t1\t1\t1\t1\t1\t100\t200\t100\t20\t96.5\tTotal",
        "5\t1\t1\t1\t1\t2\t300\t200\t100\t20\t95.1\t$12.00",
        "5\t1\t1\t1\t1\t3\t500\t200\t10\t20\t95.1\t ",
    ]
)


def example(index: int = 0) -> dict:
    return builtin_split(builtin_invoices())[1][index].as_json()


def test_health_names_the_task_and_the_run(server_url: str, trained_run: Path) -> None:
    response = httpx.get(f"{server_url}/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "task": "document-understanding",
        "run": trained_run.name,
        "step": saved_step(trained_run),
    }


def test_an_invoice_gets_its_fields_and_every_word_tagged(server_url: str) -> None:
    invoice = example()
    response = httpx.post(f"{server_url}/predict", json=invoice, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert FIELDS | {"words"} == set(body) and body["pages"] == len(invoice["pages"])
    assert [[w["text"] for w in page] for page in body["words"]] == [p["words"] for p in invoice["pages"]]
    for name, where in body["fields"].items():
        assert body[name] is not None and 1 <= where["page"] <= body["pages"] and 0 < where["score"] <= 1


def test_the_schema_describes_the_answer(server_url: str) -> None:
    schema = httpx.get(f"{server_url}/schema").json()
    assert FIELDS | {"words"} == set(schema["properties"])
    assert schema["properties"]["total"]["anyOf"][0]["pattern"] == r"^-?\d+\.\d{2}$"
    assert "LineItem" in schema["$defs"] and "quantity" in schema["$defs"]["LineItem"]["properties"]


@pytest.mark.parametrize(
    ("body", "starts"),
    [
        ({"pages": []}, "pages:"),
        ({"pages": [{"words": ["a"], "boxes": [[1, 2, 3]]}]}, "each box is"),
        ({"pages": [{"words": ["a", "b"], "boxes": [[1, 2, 3, 4]]}]}, "the invoice, page 1: a page needs"),
        ({"pages": [{"words": "a", "boxes": []}]}, "pages.0.words:"),
    ],
)
def test_malformed_pages_get_422_in_one_line(server_url: str, body: dict, starts: str) -> None:
    response = httpx.post(f"{server_url}/predict", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert starts in detail and "\n" not in detail


def test_a_page_longer_than_the_model_reads_is_tagged_in_windows(trained_run: Path) -> None:
    predictor = Predictor(trained_run, device="cpu")
    # A copy: builtin_invoices() is cached, and the other tests of this process read the same pages.
    invoice = copy.deepcopy(builtin_split(builtin_invoices())[1][0])
    page = invoice.pages[0]
    page.words, page.boxes = page.words * 4, page.boxes * 4  # past max_length words
    assert len(page.words) > predictor.preprocessor.max_length
    words = predictor.predict(invoice)["words"][0]
    assert len(words) == len(page.words) and all(word["tag"] for word in words)


def test_tesseract_tsv_is_read_onto_the_grid() -> None:
    (page,) = pages_from_tesseract_tsv(TSV, "scan.tsv")
    assert page.words == ["Total", "$12.00"]
    assert page.boxes == [(50, 200, 100, 220), (150, 200, 200, 220)]
    assert all(0 <= v <= GRID for box in page.boxes for v in box)


def test_runner_predict_reads_json_and_tsv_files(trained_run: Path, tmp_path: Path) -> None:
    (path,) = write_examples(tmp_path, 1)
    result = run_cli("predict", "--run", str(trained_run), str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: ") and "vendor:" in result.stdout and "total:" in result.stdout
    as_json = run_cli("predict", "--run", str(trained_run), "--json", str(path))
    answer = json.loads(as_json.stdout)
    assert answer["input"] == str(path) and set(answer) == FIELDS | {"input"}
    scan = tmp_path / "scan.tsv"
    scan.write_text(TSV)
    assert run_cli("predict", "--run", str(trained_run), "--json", str(scan)).returncode == 0


def test_a_missing_file_or_a_scan_without_tesseract_is_one_line(trained_run: Path, tmp_path: Path) -> None:
    missing = run_cli("predict", "--run", str(trained_run), str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    other = run_cli("predict", "--run", str(trained_run), str(text))
    assert other.returncode == 2 and "cannot read notes.txt" in other.stderr
    if shutil.which("tesseract") is None:
        scan = tmp_path / "scan.png"
        scan.write_bytes(b"\x89PNG\r\n\x1a\n")
        result = run_cli("predict", "--run", str(trained_run), str(scan))
        assert result.returncode == 2 and "needs the tesseract program" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
