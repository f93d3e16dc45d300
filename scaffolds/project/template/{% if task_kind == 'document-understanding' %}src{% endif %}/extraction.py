"""Tagged words -> an invoice's fields: what the predictor returns and what metrics score.

The same reading serves the model's tags and the true ones, so a field is scored by comparing the
fields read off each, after normalisation:
  vendor, invoice_number   spaces collapsed, case and surrounding punctuation ignored
  date                     ISO (2026-03-14) from 2026-03-14, 14/03/2026, 14.03.2026, 14 Mar 2026,
                           March 14, 2026; a date in another form is kept as written
  subtotal, tax, total     a decimal with two places ("$1,357.9" -> "1357.90")
  currency                 the mark or code written with the total (else subtotal, tax): "£", "EUR"
  line items               one per row of the item table: description, quantity, unit price,
                           amount (numbers normalised as above), from every page in order, each
                           with its page and the box around its row

An invoice is flagged when its totals do not add up: the line items' amounts do not sum to the
subtotal (or, without a subtotal, to the total less tax), or the subtotal and tax do not make the
total. Such an invoice must not be booked without a look: the spec's penalty. The answer carries
each check's two figures, so that whoever reads a flag sees by how much the totals disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from data import Page, side_by_side

HEADER_FIELDS = ("vendor", "invoice_number", "date", "subtotal", "tax", "total")
AMOUNT_FIELDS = ("subtotal", "tax", "total")
ITEM_FIELDS = ("description", "quantity", "unit_price", "amount")
MONTHS = "january february march april may june july august september october november december"
MONTH_NUMBERS = {
    name: number for number, month in enumerate(MONTHS.split(), 1) for name in (month, month[:3])
}
ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
NUMERIC_DATE = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})")  # day first, as in most of the world
DAY_MONTH_YEAR = re.compile(r"(\d{1,2}) ([a-z]+)\.? (\d{4})")
MONTH_DAY_YEAR = re.compile(r"([a-z]+)\.? (\d{1,2}),? (\d{4})")
NOT_A_NUMBER = re.compile(r"[^\d.\-]")
CURRENCY_MARK = re.compile(r"[$£€¥₹]|\b(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|INR|CNY|SEK|NOK|DKK|PLN)\b")


def normal_amount(text: str) -> str | None:
    """ "$1,357.9" -> "1357.90"; None where the text holds no number."""
    cleaned = NOT_A_NUMBER.sub("", text)
    try:
        return str(Decimal(cleaned).quantize(Decimal("0.01")))
    except InvalidOperation:
        return None


def normal_quantity(text: str) -> str | None:
    """ "2.50" -> "2.5", "3" -> "3"; None where the text holds no number."""
    cleaned = NOT_A_NUMBER.sub("", text)
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return f"{value.normalize():f}"


def normal_date(text: str) -> str:
    """The date in ISO form where its form is one of the module's; else the text as written."""
    lowered = " ".join(text.lower().split())
    for pattern, order in (
        (ISO_DATE, "ymd"),
        (NUMERIC_DATE, "dmy"),
        (DAY_MONTH_YEAR, "dmy"),
        (MONTH_DAY_YEAR, "mdy"),
    ):
        match = pattern.fullmatch(lowered)
        if not match:
            continue
        parts = dict(zip(order, match.groups(), strict=True))
        month = MONTH_NUMBERS.get(parts["m"]) if not parts["m"].isdigit() else int(parts["m"])
        if month and 1 <= month <= 12 and 1 <= int(parts["d"]) <= 31:
            return f"{int(parts['y']):04d}-{month:02d}-{int(parts['d']):02d}"
    return text.strip()


def currency_of(written: list[str]) -> str | None:
    """The first currency mark ($, £, €, ¥, ₹) or ISO code in the amounts as written; None if
    they carry none. A "$" stays a "$": which dollar it is, the page does not say."""
    for text in written:
        found = CURRENCY_MARK.search(text)
        if found:
            return found.group()
    return None


def normal_text(text: str) -> str:
    return " ".join(text.split()).strip(" .,:;#").casefold()


@dataclass
class Span:
    """A run of words tagged as one field: its text, page, box around the words and mean score."""

    kind: str
    text: str
    page: int
    box: tuple[int, int, int, int]
    score: float

    @property
    def middle(self) -> float:
        return (self.box[1] + self.box[3]) / 2

    def as_dict(self) -> dict[str, object]:
        return {"text": self.text, "page": self.page, "box": list(self.box), "score": round(self.score, 4)}


def union_box(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """The smallest box around `boxes`."""
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def spans_of(page: Page, tags: list[str], scores: list[float], page_number: int) -> list[Span]:
    """The field spans of one page: a B-X and the I-X after it; an I-X after anything else opens one."""
    found: list[Span] = []
    current: list[int] = []
    kind = ""

    def close() -> None:
        if current:
            box = union_box([page.boxes[i] for i in current])
            text = " ".join(page.words[i] for i in current)
            found.append(Span(kind, text, page_number, box, sum(scores[i] for i in current) / len(current)))

    for position, tag in enumerate(tags):
        edge, tag_kind = tag[:2], tag[2:]
        if edge == "I-" and tag_kind == kind and current:
            current.append(position)
            continue
        close()
        current, kind = ([position], tag_kind) if edge in ("B-", "I-") else ([], "")
    close()
    return found


def line_items(spans: list[Span]) -> list[dict[str, object]]:
    """The item spans grouped into rows (spans on one page side by side with the row's first are
    one item), in order down the pages. A row without a description continues nothing and is kept."""
    items: list[dict[str, object]] = []
    rows: list[list[Span]] = []
    for span in sorted(
        (s for s in spans if s.kind.startswith("ITEM_")), key=lambda s: (s.page, s.middle, s.box[0])
    ):
        row = rows[-1] if rows else None
        if row and row[0].page == span.page and side_by_side(row[0].box, span.box):
            row.append(span)
        else:
            rows.append([span])
    for row in rows:
        cells: dict[str, Span] = {}
        for span in row:
            cells.setdefault(span.kind[len("ITEM_") :].lower(), span)  # the first of each kind in a row
        item: dict[str, object] = {
            "description": " ".join(cells["description"].text.split()) if "description" in cells else None,
            "quantity": normal_quantity(cells["quantity"].text) if "quantity" in cells else None,
            "unit_price": normal_amount(cells["unit_price"].text) if "unit_price" in cells else None,
            "amount": normal_amount(cells["amount"].text) if "amount" in cells else None,
            "page": row[0].page,
            "box": list(union_box([span.box for span in row])),
        }
        items.append(item)
    return items


DISAGREEMENT_FLAGS = {  # each check, and the flag it raises when its figures disagree
    "line_items_sum": "line_items_do_not_sum_to_subtotal",
    "subtotal_and_tax": "subtotal_and_tax_do_not_make_total",
}


def checks_for(fields: dict[str, object], items: list[dict[str, object]]) -> list[dict[str, object]]:
    """The sums the totals are checked by, each with the figure worked out from the invoice
    (`computed`), the figure it states (`stated`, and which one: `stated_as`), whether they agree,
    and the flag it raises when they do not (`flag`). A check whose figures were not all read is
    not made; another flag says what is missing.

      line_items_sum      the line items' amounts against the subtotal (without a subtotal, the
                          total less tax)
      subtotal_and_tax    the subtotal plus tax (0 if none was read) against the total
    """

    def number(value: object) -> Decimal | None:
        return Decimal(value) if isinstance(value, str) else None

    subtotal, tax, total = (number(fields[name]) for name in AMOUNT_FIELDS)
    amounts = [number(item["amount"]) for item in items]
    checks: list[dict[str, object]] = []

    def check(name: str, computed: Decimal, stated: Decimal, stated_as: str) -> None:
        checks.append(
            {
                "check": name,
                "flag": DISAGREEMENT_FLAGS[name],
                "computed": str(computed),
                "stated": str(stated),
                "stated_as": stated_as,
                "agrees": computed == stated,
            }
        )

    if items and None not in amounts:
        summed = sum(amounts, Decimal("0.00"))  # type: ignore[arg-type]
        if subtotal is not None:
            check("line_items_sum", summed, subtotal, "subtotal")
        elif total is not None:
            check("line_items_sum", summed, total - (tax or 0), "total less tax")
    if subtotal is not None and total is not None:
        check("subtotal_and_tax", subtotal + (tax or 0), total, "total")
    return checks


def flags_for(
    fields: dict[str, object], items: list[dict[str, object]], checks: list[dict[str, object]]
) -> list[str]:
    """Why the invoice's totals cannot be booked as they are (empty: they add up): a figure that
    was not read, or a check whose figures disagree."""
    flags = []
    if fields["total"] is None:
        flags.append("no_total")
    if not items:
        flags.append("no_line_items")
    elif any(item["amount"] is None for item in items):
        flags.append("line_item_without_amount")
    flags += [check["flag"] for check in checks if not check["agrees"]]  # type: ignore[misc]
    return flags


def flag_lines(extraction: dict[str, object]) -> list[str]:
    """Each flag, with the two figures behind it where a check disagreed: what `predict` prints."""
    disagreeing = {check["flag"]: check for check in extraction["checks"] if not check["agrees"]}  # type: ignore[attr-defined]
    lines = []
    for flag in extraction["flags"]:  # type: ignore[attr-defined]
        check = disagreeing.get(flag)
        if check is None:
            lines.append(flag)
            continue
        computed, stated = check["computed"], check["stated"]
        if check["check"] == "line_items_sum":
            figures = f"the line items sum to {computed}; the {check['stated_as']} is {stated}"
        elif extraction["tax"] is None:
            figures = f"the subtotal is {computed} and no tax was read; the total is {stated}"
        else:
            figures = f"the subtotal plus tax is {computed}; the total is {stated}"
        lines.append(f"{flag} ({figures})")
    return lines


def extract(
    pages: list[Page], tags: list[list[str]], scores: list[list[float]] | None = None
) -> dict[str, object]:
    """The invoice's fields from its pages' word tags (and each tag's probability).

    A header field takes the span of its kind the model is surest of (the first, on equal scores);
    amounts and dates are normalised; `fields` gives, for each header field found, where its value
    first appears."""
    scores = scores or [[1.0] * len(page_tags) for page_tags in tags]
    spans = [
        span
        for number, (page, page_tags, page_scores) in enumerate(zip(pages, tags, scores, strict=True), 1)
        for span in spans_of(page, page_tags, page_scores, number)
    ]
    result: dict[str, object] = {}
    where: dict[str, object] = {}
    for name in HEADER_FIELDS:
        candidates = [span for span in spans if span.kind == name.upper()]  # in page order
        best = max(candidates, key=lambda span: span.score, default=None)  # max keeps the first of equals
        if best is None:
            result[name] = None
            continue
        result[name] = field_value(name, best.text)
        # A continuation page names the invoice again: the value is shown where it first appears.
        first = next(span for span in candidates if field_value(name, span.text) == result[name])
        where[name] = first.as_dict()
    written = [where[name]["text"] for name in ("total", "subtotal", "tax") if name in where]
    result["currency"] = currency_of(written)  # type: ignore[arg-type]
    items = line_items(spans)
    result["line_items"] = items
    result["checks"] = checks_for(result, items)
    result["flags"] = flags_for(result, items, result["checks"])  # type: ignore[arg-type]
    result["pages"] = len(pages)
    result["fields"] = where
    return result


def field_value(name: str, text: str) -> str | None:
    """A header field's value from its words: amounts and dates normalised, text as written."""
    if name in AMOUNT_FIELDS:
        return normal_amount(text)
    if name == "date":
        return normal_date(text)
    return " ".join(text.split())


def comparable(extraction: dict[str, object]) -> dict[str, object]:
    """The values field-level scoring compares: header fields normalised, and the line items as a
    list of (description, quantity, unit price, amount) rows."""
    values: dict[str, object] = {}
    for name in HEADER_FIELDS:
        value = extraction[name]
        values[name] = (
            normal_text(value) if isinstance(value, str) and name in ("vendor", "invoice_number") else value
        )
    values["line_items"] = [
        tuple(
            normal_text(v) if isinstance(v, str) and key == "description" else v
            for key, v in item.items()
            if key in ITEM_FIELDS
        )
        for item in extraction["line_items"]  # type: ignore[union-attr]
    ]
    return values


def field_counts(predicted: dict[str, object], true: dict[str, object]) -> dict[str, tuple[int, int, int]]:
    """Per field: (right, predicted, true). A header field predicted with a wrong value counts as
    predicted and not right; line items count one each, matched as a multiset of whole rows."""
    counts: dict[str, tuple[int, int, int]] = {}
    for name in HEADER_FIELDS:
        guess, truth = predicted[name], true[name]
        counts[name] = (
            int(guess is not None and guess == truth),
            int(guess is not None),
            int(truth is not None),
        )
    guessed, real = list(predicted["line_items"]), list(true["line_items"])  # type: ignore[call-overload]
    right = 0
    for row in guessed:
        if row in real:
            real.remove(row)
            right += 1
    counts["line_items"] = (right, len(guessed), len(true["line_items"]))  # type: ignore[arg-type]
    return counts
