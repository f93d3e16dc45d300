"""The invoices: the built-in ones add up (or are meant not to), split by vendor, read back into the
fields they were drawn from; files are read and refused as the docstrings say; pages encode."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from config import Config, ProjectError
from data import (
    GRID,
    IGNORE,
    MISMATCH_SHARE,
    PAD,
    UNKNOWN,
    LayoutPreprocessor,
    Page,
    TaskData,
    builtin_invoices,
    builtin_split,
    held_out,
    read_invoice_file,
    word_form,
    word_shape,
    write_examples,
)
from extraction import (
    checks_for,
    currency_of,
    extract,
    flag_lines,
    flags_for,
    normal_amount,
    normal_date,
    normal_quantity,
)

SUM_FLAGS = {"line_items_do_not_sum_to_subtotal", "subtotal_and_tax_do_not_make_total"}
FLAG_OF_CHECK = {
    "line_items_sum": "line_items_do_not_sum_to_subtotal",
    "subtotal_and_tax": "subtotal_and_tax_do_not_make_total",
}


def test_the_builtin_invoices_are_the_same_every_time_and_mostly_add_up() -> None:
    invoices = builtin_invoices()
    assert len(invoices) == 2000 and builtin_invoices.__wrapped__()[7].pages == invoices[7].pages
    flagged = 0
    for invoice in invoices:
        fields = extract(invoice.pages, [page.tags or [] for page in invoice.pages])
        assert fields["vendor"] == invoice.group and fields["total"] is not None and fields["line_items"]
        assert set(fields["flags"]) <= SUM_FLAGS  # nothing missing: only the drawn typos are flagged
        assert len(fields["checks"]) == 2  # every one prints a subtotal and a total
        assert len(fields["flags"]) == sum(not check["agrees"] for check in fields["checks"])
        flagged += bool(fields["flags"])
    assert abs(flagged / len(invoices) - MISMATCH_SHARE) < 0.03


def test_multipage_invoices_keep_every_pages_line_items_in_order() -> None:
    long = [invoice for invoice in builtin_invoices() if len(invoice.pages) == 3]
    assert long, "some invoices run over three pages"
    invoice = long[0]
    items = extract(invoice.pages, [page.tags or [] for page in invoice.pages])["line_items"]
    drawn = sum(page.tags.count("B-ITEM_DESCRIPTION") for page in invoice.pages if page.tags)
    assert len(items) == drawn > 12
    assert [item["page"] for item in items] == sorted(item["page"] for item in items)
    assert {item["page"] for item in items} == {1, 2, 3}
    for item in items:
        price, quantity, amount = (item[key] for key in ("unit_price", "quantity", "amount"))
        assert round(float(price) * float(quantity), 2) == pytest.approx(float(amount))
    # The later pages name the invoice again. Read there more surely, its number is still shown
    # where it first appears, on page 1.
    surer_later = [[0.5 + 0.2 * number] * len(page.words) for number, page in enumerate(invoice.pages)]
    read = extract(invoice.pages, [page.tags or [] for page in invoice.pages], surer_later)
    shown = read["fields"]["invoice_number"]
    assert shown["page"] == 1 and shown["score"] == 0.5 and shown["text"] == read["invoice_number"]
    # Each row's box spans its cells, description to amount, and the rows of a page go down it.
    for earlier, item in itertools.pairwise(items):
        x0, y0, x1, y1 = item["box"]
        assert 0 <= x0 < x1 <= GRID and 0 <= y0 < y1 <= GRID and x1 - x0 > GRID / 2
        if earlier["page"] == item["page"]:
            assert earlier["box"][1] + earlier["box"][3] < y0 + y1


def test_vendors_stay_on_one_side_and_held_out_names_only_validate() -> None:
    train, val = builtin_split(builtin_invoices())
    assert 0.15 < len(val) / (len(train) + len(val)) < 0.35
    train_vendors, val_vendors = {i.group for i in train}, {i.group for i in val}
    assert not train_vendors & val_vendors
    assert not any(held_out(vendor) for vendor in train_vendors)
    assert any(held_out(vendor) for vendor in val_vendors) and not all(held_out(v) for v in val_vendors)


def check(name: str, computed: str, stated: str, stated_as: str, agrees: bool) -> dict[str, object]:
    return {
        "check": name,
        "flag": FLAG_OF_CHECK[name],
        "computed": computed,
        "stated": stated,
        "stated_as": stated_as,
        "agrees": agrees,
    }


def test_each_flag_on_the_totals_comes_with_the_two_figures_that_disagree() -> None:
    items = [{"amount": "10.00"}, {"amount": "20.00"}]
    fields = {"subtotal": "31.00", "tax": "3.10", "total": "34.10"}
    checks = checks_for(fields, items)
    assert checks == [
        check("line_items_sum", "30.00", "31.00", "subtotal", agrees=False),
        check("subtotal_and_tax", "34.10", "34.10", "total", agrees=True),
    ]
    flags = flags_for(fields, items, checks)
    assert flags == ["line_items_do_not_sum_to_subtotal"]
    assert flag_lines({**fields, "checks": checks, "flags": flags}) == [
        "line_items_do_not_sum_to_subtotal (the line items sum to 30.00; the subtotal is 31.00)"
    ]
    untaxed = {"subtotal": "30.00", "tax": None, "total": "33.00"}
    checks = checks_for(untaxed, items)
    assert flag_lines({**untaxed, "checks": checks, "flags": flags_for(untaxed, items, checks)}) == [
        "subtotal_and_tax_do_not_make_total (the subtotal is 30.00 and no tax was read; the total is 33.00)"
    ]
    # Without a subtotal the items are held against the total less tax, and a missing tax counts as 0.
    no_subtotal = {"subtotal": None, "tax": None, "total": "30.00"}
    checks = checks_for(no_subtotal, items)
    assert checks == [check("line_items_sum", "30.00", "30.00", "total less tax", agrees=True)]
    assert flags_for(no_subtotal, items, checks) == []
    # A check missing a figure is not made; its flag says which figure is missing.
    unpriced = [{"amount": "10.00"}, {"amount": None}]
    checks = checks_for({"subtotal": None, "tax": None, "total": None}, unpriced)
    assert checks == []
    assert flags_for({"total": None}, unpriced, checks) == ["no_total", "line_item_without_amount"]
    assert flags_for({"total": "1.00"}, [], []) == ["no_line_items"]


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("2026-03-14", "2026-03-14"),
        ("14/03/2026", "2026-03-14"),
        ("14.03.2026", "2026-03-14"),
        ("14 Mar 2026", "2026-03-14"),
        ("March 14, 2026", "2026-03-14"),
        ("next Tuesday", "next Tuesday"),
        ("31/02/2026", "2026-02-31"),  # the form is read; whether the day exists is not checked
    ],
)
def test_dates_are_read_in_each_form_into_iso(written: str, iso: str) -> None:
    assert normal_date(written) == iso


def test_amounts_and_quantities_are_normalised() -> None:
    assert normal_amount("$1,357.9") == "1357.90"
    assert normal_amount("€77110.30") == "77110.30"
    assert normal_amount("n/a") is None
    assert normal_quantity("2.50") == "2.5" and normal_quantity("10") == "10"


def test_the_currency_is_the_mark_or_code_written_with_the_total() -> None:
    assert currency_of(["£8,634.72", "$7,195.60"]) == "£"
    assert currency_of(["8,634.72", "EUR 7,195.60"]) == "EUR"
    assert currency_of(["8,634.72", "7,195.60"]) is None
    assert currency_of(["USDA 12.00"]) is None  # a code only as a whole word
    drawn = Counter(extract(i.pages, [p.tags or [] for p in i.pages])["currency"] for i in builtin_invoices())
    assert set(drawn) == {"$", "£", "€", None} and min(drawn.values()) > 300


def test_word_forms_and_shapes() -> None:
    assert word_form("INV-20417") == "inv-00000"
    assert word_shape("Acme") == "Xx" and word_shape("$1,357.95") == "$d,d.d" and word_shape("VAT") == "X"


def test_a_file_of_invoices_with_pixel_boxes_is_read_onto_the_grid(tmp_path: Path) -> None:
    page = {
        "words": ["Total", "$12.00"],
        "boxes": [[100, 200, 150, 220], [300, 200, 400, 220]],
        "width": 2000,
        "height": 1000,
        "tags": ["O", "B-TOTAL"],
    }
    path = tmp_path / "invoices.jsonl"
    path.write_text(json.dumps({"pages": [page]}) + "\n" + json.dumps({"pages": [page, page]}) + "\n")
    invoices = read_invoice_file(path)
    assert [len(invoice.pages) for invoice in invoices] == [1, 2]
    assert invoices[0].pages[0].boxes == [(50, 200, 75, 220), (150, 200, 200, 220)]
    assert extract(invoices[1].pages, [p.tags or [] for p in invoices[1].pages])["total"] == "12.00"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"pages": []}', "non-empty list of 'pages'"),
        ('{"pages": [{"words": ["a"], "boxes": []}]}', "same length"),
        ('{"pages": [{"words": ["a"], "boxes": [[1, 2, 3]]}]}', "[x0, y0, x1, y1]"),
        (
            '{"pages": [{"words": ["a"], "boxes": [[1, 2, 3, 4]], "tags": ["B-PRICE"]}]}',
            "unknown tags B-PRICE",
        ),
    ],
)
def test_a_malformed_file_is_refused_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ProjectError, match=r"bad\.json") as error:
        read_invoice_file(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_training_on_a_file_without_tags_is_refused(tmp_path: Path, config: Config) -> None:
    from data import build_data

    path = tmp_path / "unlabelled.json"
    path.write_text(json.dumps([{"pages": [{"words": ["a"], "boxes": [[1, 2, 3, 4]]}]}] * 4))
    with pytest.raises(ProjectError, match="without 'tags'"):
        build_data(Config(**{**config.__dict__, "dataset": str(path)}))


def test_pages_encode_padded_and_in_windows_and_the_vocabulary_round_trips(
    data: TaskData, tmp_path: Path
) -> None:
    preprocessor = data.preprocessor
    page = Page(["Total", "Zyzzogeton", "$1,357.95"], [(10, 20, 30, 40)] * 3)
    words, _, boxes = preprocessor.encode(page)
    assert words.shape == (preprocessor.max_length,) and boxes.shape == (preprocessor.max_length, 4)
    assert words[1] == UNKNOWN and words[0] not in (PAD, UNKNOWN) and (words[3:] == PAD).all()
    assert boxes[:3].tolist() == [[10, 20, 30, 40]] * 3 and boxes[3:].eq(0).all()
    later, _, _ = preprocessor.encode(page, start=2)
    assert later[0] == words[2] and later[1] == PAD
    preprocessor.save(tmp_path)
    assert LayoutPreprocessor.load(tmp_path).__dict__ == preprocessor.__dict__
    _, targets = data.val[3]
    assert targets[-1] == 3 and data.train[0][1][-1] == len(data.val)  # training pages after validation
    tags = targets[:-1]
    assert (tags[len(data.val.pages[3].words) :] == IGNORE).all()
    assert all(0 <= int(box) <= GRID for box in data.val[3][0][2].flatten())


def test_examples_are_written_as_post_predict_takes_them(tmp_path: Path) -> None:
    paths = write_examples(tmp_path / "examples", 2)
    assert len(paths) == 2
    record = json.loads(paths[0].read_text())
    assert set(record["pages"][0]) == {"words", "boxes"}
    assert Counter(len(box) for box in record["pages"][0]["boxes"]) == Counter(
        {4: len(record["pages"][0]["words"])}
    )
    assert torch.tensor(record["pages"][0]["boxes"]).max() <= GRID
