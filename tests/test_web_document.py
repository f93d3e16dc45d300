"""The document-understanding (invoice extraction) project's playground in headless Chromium,
against its real server.

One project is rendered with `ccpt new --spec document-understanding`, trained for a few seconds
and served for the whole module. What the page shows (each page drawn with its words and their
fields, the header fields, the line items, the flags) is compared with what POST /predict answers
for the same invoice, never with hard-coded model output.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator

import pytest

from tests.web_support import (
    ServedProject,
    assert_every_control_is_labelled,
    assert_readable,
    assert_readable_on_a_phone,
    colours_of,
    http,
    open_playground,
    screenshot,
    served_project,
    tab_to,
    to_fixed,
)

pytestmark = pytest.mark.slow

# Small settings: one small layer, pages read 128 words at a time (the built-in pages have fewer),
# a few evaluation batches: about five seconds on a CPU, after which the model finds the vendor,
# the totals and the line items of the validation invoices. The page is under test, not the model.
TINY = [
    "batch_size=16", "max_length=128", "n_embd=32", "n_layer=1", "eval_every=40", "eval_batches=4",
    "warmup_steps=5", "lr=5e-3", "log_every=10", "device=cpu",
]  # fmt: skip
TRAIN = ["--max-steps", "120", *[part for setting in TINY for part in ("--set", setting)]]
HEADER_FIELDS = ["vendor", "invoice_number", "date", "subtotal", "tax", "total"]
DASH = "\u2013"  # what the page shows for a value not read
RESULT_TEXT = [
    "#verdict",
    "#flags-heading",
    "#flag-list li",
    "#header-fields td",
    "#line-items td",
    "#legend li",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProject]:
    with served_project(tmp_path_factory.mktemp("web-doc"), "document-understanding", TRAIN) as served:
        yield served


@pytest.fixture(scope="module")
def examples(project: ServedProject) -> list[dict]:
    status, body = http(f"{project.url}/api/examples")
    assert status == 200 and body["task"] == "document-understanding"
    return body["examples"]


def predicted(project: ServedProject, invoice: dict) -> dict:
    status, answer = http(f"{project.url}/predict", json.dumps(invoice).encode())
    assert status == 200, answer
    return answer


def wait_for_result(page: object) -> None:
    # A function, not a bare expression: Playwright re-evaluates an expression with eval() when its
    # first check fails, which the page's Content-Security-Policy (script-src 'self') refuses.
    page.wait_for_function(
        "() => { const text = document.getElementById('verdict').textContent;"
        " return text.startsWith('Read ') || text === 'Nothing extracted.'; }"
    )


def forget_verdict(page: object) -> None:
    page.eval_on_selector("#verdict", "verdict => { verdict.textContent = ''; }")  # not the last answer's


def extract_example(page: object, index: int) -> object:
    """Click validation invoice `index`, wait for the page to show the answer, return the response."""
    page.wait_for_selector("#examples button")
    forget_verdict(page)
    with page.expect_response("**/predict") as answer:
        page.locator("#examples button").nth(index).click()
    wait_for_result(page)
    return answer.value


def choose_json(page: object, name: str, data: bytes) -> None:
    """Pick a .json file in the page's file input, as the file dialog would."""
    page.set_input_files("#file", files=[{"name": name, "mimeType": "application/json", "buffer": data}])


def paste_and_extract(page: object, text: str) -> None:
    page.get_by_label("Invoice as JSON").fill(text)
    forget_verdict(page)
    page.get_by_role("button", name="Extract", exact=True).click()
    wait_for_result(page)


def kind_of(tag: str) -> str:
    return tag[2:] if tag[:2] in ("B-", "I-") else ""


def cells(page: object, selector: str) -> list[list[str | None]]:
    """The text of each cell of the rows `selector`, as seen (without what is only read aloud);
    None where the page shows a dash for a value not read."""
    rows = page.eval_on_selector_all(
        selector,
        """rows => rows.map(r => [...r.cells].map(c => { const copy = c.cloneNode(true);
             copy.querySelectorAll('.visually-hidden').forEach(e => e.remove());
             return copy.textContent.trim(); }))""",
    )
    return [[None if text == DASH else text for text in row] for row in rows]


def percent(probability: float) -> str:
    """As the page writes a probability: JavaScript's toFixed(1) of its percentage."""
    return f"{to_fixed(probability * 100, 1)}%"


def drawn_pages(page: object) -> list[dict]:
    """Per SVG page: its number, each word's [text, x, y of its box top, width, tag], its marks."""
    return page.eval_on_selector_all(
        "#pages svg",
        """svgs => svgs.map(svg => ({
             page: Number(svg.dataset.page),
             viewBox: svg.getAttribute('viewBox'),
             words: [...svg.querySelectorAll('g.word')].map(g => { const t = g.querySelector('text');
               return [t.textContent, Number(t.getAttribute('x')), g.dataset.tag,
                       t.getAttribute('textLength')]; }),
             marks: [...svg.querySelectorAll('g.word rect.mark')].map(r => [r.closest('g').dataset.tag,
               r.getAttribute('class'), getComputedStyle(r).fill]),
             caption: svg.closest('figure').querySelector('figcaption').textContent,
             items: [...svg.querySelectorAll('rect.item-row')].map(r => [Number(r.dataset.item),
               Number(r.getAttribute('x')), Number(r.getAttribute('width')),
               r.querySelector('title').textContent]),
           }))""",
    )


def drawn_word(word: dict) -> list[object]:
    """[text, x, tag, textLength] of a word of the answer as the page must draw it: at its box's
    left edge, stretched to its box's width (a box of no width: as the font sets it)."""
    x0, _, x1, _ = word["box"]
    return [word["text"], x0, word["tag"], str(x1 - x0) if x1 > x0 else None]


def assert_page_shows(page: object, answer: dict) -> None:
    """The result card shows `answer`, the server's extraction: the verdict, the flags (or none),
    the header fields, the line items, and every page drawn with every word and its field."""
    found = sum(answer[name] is not None for name in HEADER_FIELDS)
    items, pages = answer["line_items"], answer["pages"]
    verdict = (
        f"Read {found} of 6 fields and {len(items)} line item{'' if len(items) == 1 else 's'}"
        f" from {pages} page{'' if pages == 1 else 's'}."
    )
    if answer["currency"]:
        verdict += f" Amounts in {answer['currency']}."
    assert page.inner_text("#verdict") == verdict + ("" if answer["flags"] else " The totals add up.")
    shown_flags = page.eval_on_selector_all("#flag-list li", "items => items.map(i => i.dataset.flag)")
    assert shown_flags == answer["flags"]
    assert page.is_visible("#flags") == bool(answer["flags"])
    rows = cells(page, "#header-fields tbody tr")
    expected_rows = []
    for name in HEADER_FIELDS:
        where = answer["fields"].get(name)
        label = name.replace("_", " ").capitalize()
        if where is None:
            expected_rows.append([label, answer[name], None, None, None])
        else:
            expected_rows.append(
                [label, answer[name], where["text"], str(where["page"]), percent(where["score"])]
            )
    assert rows == expected_rows
    assert cells(page, "#line-items tbody tr") == [
        [item["description"], item["quantity"], item["unit_price"], item["amount"], str(item["page"])]
        for item in items
    ]
    assert page.is_visible("#line-items") == bool(items) and page.is_visible("#no-items") == (not items)
    drawn = drawn_pages(page)
    assert [d["page"] for d in drawn] == list(range(1, pages + 1)) == list(range(1, len(answer["words"]) + 1))
    for number, (shown, words) in enumerate(zip(drawn, answer["words"], strict=True), 1):
        assert shown["words"] == [drawn_word(word) for word in words]
        fielded = [w for w in words if w["tag"] != "O"]
        assert [mark[0] for mark in shown["marks"]] == [w["tag"] for w in fielded]
        assert [mark[1] for mark in shown["marks"]] == [
            f"mark field-{kind_of(w['tag']).lower().replace('_', '-')}" for w in fielded
        ]
        # Each line item read on this page is outlined around its row, numbered as the table is.
        assert shown["items"] == [
            [
                index,
                item["box"][0] - 4,
                item["box"][2] - item["box"][0] + 8,
                f"Line item {index}: " + ", ".join(t for t in (item["description"], item["amount"]) if t),
            ]
            for index, item in enumerate(items, 1)
            if item["page"] == number
        ]
        plural = "" if len(words) == 1 else "s"
        assert (
            shown["caption"]
            == f"Page {number} of {pages}: {len(words)} word{plural}, {len(fielded)} in a field"
        )
    # Each field has its own colour, on the marks and in the legend.
    fills: dict[str, set[str]] = {}
    for shown in drawn:
        for tag, _, fill in shown["marks"]:
            fills.setdefault(kind_of(tag), set()).add(fill)
    assert all(len(colours) == 1 for colours in fills.values()), fills
    assert len({next(iter(colours)) for colours in fills.values()}) == len(fills), fills
    counts: dict[str, int] = {}
    for word in (w for words in answer["words"] for w in words if w["tag"] != "O"):
        counts[kind_of(word["tag"])] = counts.get(kind_of(word["tag"]), 0) + 1
    legend = page.eval_on_selector_all(
        "#legend li", "items => items.map(i => [i.dataset.kind, i.textContent])"
    )
    assert sorted(legend) == sorted([kind, f"{NAMES[kind]} \u00d7 {count}"] for kind, count in counts.items())
    assert page.is_visible("#extraction") and not page.is_visible("#error")


NAMES = {
    "VENDOR": "Vendor",
    "INVOICE_NUMBER": "Invoice number",
    "DATE": "Date",
    "SUBTOTAL": "Subtotal",
    "TAX": "Tax",
    "TOTAL": "Total",
    "ITEM_DESCRIPTION": "Item description",
    "ITEM_QUANTITY": "Quantity",
    "ITEM_UNIT_PRICE": "Unit price",
    "ITEM_AMOUNT": "Amount",
}


def test_a_multi_page_validation_invoice_is_drawn_and_read(
    project: ServedProject, browser: object, examples: list[dict]
) -> None:
    """The examples are the validation invoices; one click extracts one. The page draws each of its
    pages with every word, marks the fields' words, and lists the line items of every page."""
    assert len(examples) == 6 and all(example["pages"] for example in examples)
    index = next(i for i, example in enumerate(examples) if len(example["pages"]) > 1)
    invoice = examples[index]
    expected = predicted(project, invoice)
    assert expected["pages"] == len(invoice["pages"]) > 1
    # The model finds items on every page of it: the table must then show them all.
    assert sorted({item["page"] for item in expected["line_items"]}) == list(range(1, expected["pages"] + 1))
    with open_playground(browser, project.url) as page:
        assert page.inner_text("h1") == "Read the fields of an invoice"
        assert page.inner_text("#result-heading") == "Extraction"
        assert page.inner_text("#verdict") == "Nothing extracted yet."
        assert not page.is_visible("#extraction") and not page.is_visible("#flags")
        assert_every_control_is_labelled(page)
        page.wait_for_selector("#examples button")
        offered = page.eval_on_selector_all(
            "#examples button", "buttons => buttons.map(b => [b.dataset.name, b.textContent])"
        )
        assert offered == [
            [e["name"], f"{e['name']} \u00b7 {len(e['pages'])} page{'' if len(e['pages']) == 1 else 's'}"]
            for e in examples
        ]
        answer = extract_example(page, index)
        assert json.loads(answer.request.post_data) == invoice  # the box's JSON is the example, exactly
        assert json.loads(page.input_value("#invoice")) == invoice
        assert answer.json() == expected
        assert_page_shows(page, expected)
        shown_pages = {row[4] for row in cells(page, "#line-items tbody tr")}
        assert shown_pages == {str(n) for n in range(1, expected["pages"] + 1)}
        # Pointing at a row of the table, or reaching it by keyboard, marks its outline on its page.
        last = len(expected["line_items"])
        active = (
            "() => [...document.querySelectorAll('#line-items .active, #pages .active')]"
            ".map(e => [e.tagName, e.dataset.item])"
        )
        page.hover(f"#line-items tbody tr:nth-child({last})")
        assert sorted(page.evaluate(active)) == [["TR", str(last)], ["rect", str(last)]]
        page.hover("h1")
        assert page.evaluate(active) == []
        page.focus("#line-items tbody tr:nth-child(1)")
        marked = page.eval_on_selector_all(
            "#pages rect.item-row.active", "rs => rs.map(r => r.closest('svg').dataset.page)"
        )
        assert marked == [str(expected["line_items"][0]["page"])]
        # A page drawn is a square of the grid (the examples give no page size), with a white sheet.
        drawn = drawn_pages(page)
        assert {d["viewBox"] for d in drawn} == {"0 0 1000 1000"}
        assert page.eval_on_selector("#pages .sheet", "r => getComputedStyle(r).fill") == "rgb(255, 255, 255)"
        screenshot(page, "document-playground")
        assert_readable_on_a_phone(page, "document-playground-phone")


def test_every_validation_invoice_shows_what_the_server_answers(
    project: ServedProject, browser: object, examples: list[dict]
) -> None:
    """Each example in turn replaces the last one's result: pages, tables and flags."""
    with open_playground(browser, project.url) as page:
        for index, invoice in enumerate(examples):
            extract_example(page, index)
            assert_page_shows(page, predicted(project, invoice))


def edited_total(invoice: dict, answer: dict) -> tuple[dict, str]:
    """`invoice` with the first digit of the total the model read changed (1 more, or 8 for a 9), so
    that the subtotal and tax no longer make it, and the new total as the server writes it. The
    word keeps its form (digits are all one to the model), so the model still reads it as the total."""
    page_index, word_index = next(
        (p, w)
        for p, words in enumerate(answer["words"])
        for w, word in enumerate(words)
        if word["tag"] == "B-TOTAL" and re.search(r"\d", word["text"])
    )
    edited = copy.deepcopy(invoice)
    words = edited["pages"][page_index]["words"]
    first = re.search(r"\d", words[word_index]).start()
    digit = int(words[word_index][first])
    words[word_index] = (
        f"{words[word_index][:first]}{digit + 1 if digit < 9 else 8}{words[word_index][first + 1 :]}"
    )
    return edited, f"{float(re.sub(r'[^0-9.]', '', words[word_index])):.2f}"


def test_an_uploaded_invoice_whose_totals_do_not_add_up_is_flagged(
    project: ServedProject, browser: object, examples: list[dict]
) -> None:
    """A validation invoice that adds up, its total changed in its JSON file: the page reads the
    file, and shows the flags the server raises, first, with the figures that disagree."""
    answers = [predicted(project, invoice) for invoice in examples]
    index = next(
        i
        for i, answer in enumerate(answers)
        if not answer["flags"] and answer["subtotal"] is not None and "total" in answer["fields"]
    )
    edited, total = edited_total(examples[index], answers[index])
    expected = predicted(project, edited)
    assert expected["total"] == total and expected["subtotal"] == answers[index]["subtotal"], expected
    assert "subtotal_and_tax_do_not_make_total" in expected["flags"], expected
    text = json.dumps(edited, indent=2)
    with open_playground(browser, project.url) as page:
        extract_example(page, index)  # a result that adds up first: the flagged one must replace it
        assert not page.is_visible("#flags")
        forget_verdict(page)
        with page.expect_response("**/predict") as answer:
            choose_json(page, "mismatch.json", text.encode())
        wait_for_result(page)
        assert json.loads(answer.value.request.post_data) == edited
        assert page.input_value("#invoice") == text  # the file is put in the box as it was written
        assert_page_shows(page, expected)
        assert page.is_visible("#flags")
        assert page.inner_text("#flags-heading") == (
            "The totals do not add up: check this invoice before booking it"
        )
        subtotal, tax = expected["subtotal"], expected["tax"]
        flag = page.inner_text('#flag-list li[data-flag="subtotal_and_tax_do_not_make_total"]')
        if tax is None:
            assert flag == f"The subtotal {subtotal}, with no tax read, is not the total {total}."
        else:
            made = f"{float(subtotal) + float(tax):.2f}"
            assert flag == f"The subtotal {subtotal} and tax {tax} make {made}, not the total {total}."
        # The flags come before the tables: the first thing read after the verdict.
        flags_box = page.locator("#flags").bounding_box()
        assert flags_box["y"] < page.locator("#header-fields").bounding_box()["y"]
        assert page.eval_on_selector("#flags", "f => f.parentElement.getAttribute('aria-live')") == "polite"
        screenshot(page, "document-playground-flags")


def test_malformed_json_gives_a_one_line_error_and_the_page_still_works(
    project: ServedProject, browser: object, examples: list[dict]
) -> None:
    """Broken JSON is refused in the page (nothing is posted) with one line naming the problem; an
    invoice the server refuses shows its one-line reason; the page then extracts as before."""
    broken = '{\n  "pages": [\n    {"words": ["Total", "12.00"],\n     "boxes": [[1, 2, 3, 4]]\n'
    requests: list[str] = []
    with open_playground(browser, project.url) as page:
        page.on("request", lambda request: requests.append(request.url) if "predict" in request.url else None)
        extract_example(page, 0)  # a result first: the error must replace it
        requests.clear()
        paste_and_extract(page, broken)
        page.wait_for_selector("#error:not([hidden])")
        error = page.inner_text("#error")
        assert error.startswith("The invoice is not valid JSON: ") and "\n" not in error, error
        assert page.get_attribute("#error", "role") == "alert"
        assert requests == []
        assert page.inner_text("#verdict") == "Nothing extracted."
        assert not page.is_visible("#extraction") and not page.is_visible("#flags")
        assert page.locator("#pages svg, #header-fields tbody tr, #line-items tbody tr").count() == 0
        assert page.get_attribute("#invoice", "aria-invalid") == "true"
        assert page.evaluate("document.activeElement.id") == "invoice"  # back to the box to fix it
        screenshot(page, "document-playground-bad-json")

        paste_and_extract(page, "[1, 2]")  # JSON, but not an invoice
        assert page.inner_text("#error") == (
            'The invoice holds a list; paste one invoice, an object with a list of "pages".'
        )
        assert requests == []

        unpaired = {"pages": [{"words": ["Total", "12.00"], "boxes": [[1, 2, 3, 4]]}]}
        status, refused = http(f"{project.url}/predict", json.dumps(unpaired).encode())
        assert status == 422 and "\n" not in refused["detail"]
        page.get_by_label("Invoice as JSON").fill(json.dumps(unpaired))
        forget_verdict(page)
        with page.expect_response("**/predict") as response:
            page.get_by_role("button", name="Extract", exact=True).click()
        assert response.value.status == 422
        wait_for_result(page)
        assert page.inner_text("#error") == refused["detail"]
        assert not page.is_visible("#extraction")

        # Markup in a word is drawn as text; Ctrl+Enter in the box extracts too.
        invoice = copy.deepcopy(examples[0])
        invoice["pages"][0]["words"][0] = "<b>Invoice</b>"
        expected = predicted(project, invoice)
        page.get_by_label("Invoice as JSON").fill(json.dumps(invoice))
        forget_verdict(page)
        with page.expect_response("**/predict"):
            page.focus("#invoice")
            page.keyboard.press("Control+Enter")
        wait_for_result(page)
        assert_page_shows(page, expected)
        assert page.locator("#result b").count() == 0
        assert page.get_attribute("#invoice", "aria-invalid") is None


def test_an_empty_box_and_a_broken_file_say_what_to_do(project: ServedProject, browser: object) -> None:
    with open_playground(browser, project.url) as page:
        tab_to(page, "invoice")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector("#error:not([hidden])")
        assert page.inner_text("#error") == (
            "Paste an invoice's JSON first, drop its file, or pick a validation invoice."
        )
        choose_json(page, "scan.json", b"\x89PNG\r\n\x1a\n")  # not JSON at all
        page.wait_for_function("() => document.getElementById('error').textContent.startsWith('scan.json')")
        error = page.inner_text("#error")
        assert error.startswith("scan.json is not valid JSON: ") and "\n" not in error, error


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_results_are_readable_in_light_and_dark_mode(
    project: ServedProject, browser: object, examples: list[dict], scheme: str
) -> None:
    """At least 4.5:1 (WCAG AA) between the text of the results (the flags, the tables, the words
    on the drawn pages are on white paper either way) and what is behind it."""
    answers = [predicted(project, invoice) for invoice in examples]
    index = next(i for i, answer in enumerate(answers) if "total" in answer["fields"])
    edited, _ = edited_total(examples[index], answers[index])
    with open_playground(browser, project.url, scheme) as page:
        paste_and_extract(page, json.dumps(edited))
        assert page.is_visible("#flags")
        assert_readable(scheme, colours_of(page, RESULT_TEXT))
        screenshot(page, f"document-playground-{scheme}")
