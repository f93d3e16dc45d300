"""Invoices in, (words, boxes, word tags) pages out: the sources, the split and the encoding.

An invoice is a list of pages, as an OCR engine reads a scan: each page's words in reading order
(in_reading_order), each with the box around its ink (x0, y0, x1, y1) on a 0-1000 grid over the
page's width and height, LayoutLM's convention. A word's tag says which field it belongs to (BIO
over FIELD_TYPES); the fields themselves (vendor, date, totals, line items) are read off the tags
by extraction.py.

Where the invoices come from (config.dataset):
  builtin   2,000 invoices generated here, the same on every machine: three header layouts,
            varied labels ("Total due", "Amount due" ...), five date formats, a customer's name
            beside the vendor's, a due date beside the invoice date, 3% of the other words misread
            as OCR misreads them ("Tota1"), one to thirty line items running over up to three
            pages, and one invoice in ten whose totals do not add up. A fifth of the vendors'
            names (those of every fifth first word) appear only in validation invoices, so the
            score says whether the model finds a vendor by where it stands, not by its name
  a file    .json (a list of invoices) or .jsonl (one per line), each {"pages": [{"words": [...],
            "boxes": [[x0, y0, x1, y1], ...], "tags": [...]}]}; boxes in pixels of the page
            with "width" and "height" beside them, else on the 0-1000 grid

Each page is one training example; metrics and the predictor put an invoice's pages back together.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import torch

from config import Config, ProjectError

FIELD_TYPES = (
    "VENDOR",
    "INVOICE_NUMBER",
    "DATE",
    "SUBTOTAL",
    "TAX",
    "TOTAL",
    "ITEM_DESCRIPTION",
    "ITEM_QUANTITY",
    "ITEM_UNIT_PRICE",
    "ITEM_AMOUNT",
)
TAGS = ["O", *(f"{edge}-{kind}" for kind in FIELD_TYPES for edge in ("B", "I"))]
IGNORE = -100  # the tag of padding (cross_entropy's ignore_index)
PAD, UNKNOWN = 0, 1  # word and shape ids
GRID = 1000  # boxes are on a GRID x GRID grid over the page
Box = tuple[int, int, int, int]


@dataclass
class Page:
    words: list[str]
    boxes: list[Box]
    tags: list[str] | None = None  # None: not labelled (an invoice to extract from)


@dataclass
class Invoice:
    pages: list[Page]
    name: str = ""  # what identifies it (the built-in invoices' number, a file's line)
    group: str = ""  # invoices of one group (the built-in vendor) stay on one side of the split

    @property
    def text(self) -> str:
        return "\n".join(" ".join(page.words) for page in self.pages)

    def as_json(self) -> dict[str, object]:
        """The invoice as POST /predict and `runner.py predict` take it: its pages' words and boxes
        (on the grid), without their tags."""
        pages = [{"words": page.words, "boxes": [list(box) for box in page.boxes]} for page in self.pages]
        return {"name": self.name, "pages": pages}


def side_by_side(first: Box, second: Box) -> bool:
    """Whether two boxes are on one line: at least half of the shorter lies beside the other (a
    word's box is its ink's, so "paper" sits lower than "A4" on the same line)."""
    beside = min(first[3], second[3]) - max(first[1], second[1])
    return beside >= 0.5 * min(first[3] - first[1], second[3] - second[1])


def in_reading_order(page: Page) -> Page:
    """The page's words line by line from the top, each line left to right: the order every page is
    read in, whatever order its source (the generator, a file, an OCR engine's blocks) gave. A word
    joins the line above when it is side by side with all of that line so far."""
    lines: list[tuple[int, int, list[int]]] = []  # (top, bottom, words) of each line
    for index in sorted(range(len(page.words)), key=lambda i: page.boxes[i][1] + page.boxes[i][3]):
        _, top, _, bottom = page.boxes[index]
        if lines:
            line_top, line_bottom, words = lines[-1]
            if side_by_side((0, top, 0, bottom), (0, line_top, 0, line_bottom)):
                lines[-1] = (min(top, line_top), max(bottom, line_bottom), [*words, index])
                continue
        lines.append((top, bottom, [index]))
    order = [i for _, _, words in lines for i in sorted(words, key=lambda i: page.boxes[i][0])]
    return Page(
        [page.words[i] for i in order],
        [page.boxes[i] for i in order],
        None if page.tags is None else [page.tags[i] for i in order],
    )


# --- The built-in invoices -----------------------------------------------------------------

# Names written as prose: literals of a hundred quoted words read worse.
NAME_FIRST = (  # noqa: SIM905
    "Northwind Bluestone Redwood Silverline Harbor Summit Pinecrest Ironbridge Lakeside Granite "
    "Oakridge Riverside Westfield Brightwater Kingsley Ashford Copperfield Fairview Highland "
    "Meridian Sterling Evergreen Clearwater Stonegate Maple Falcon Beacon Cedar Orchard Wexford"
).split()
NAME_SECOND = (  # noqa: SIM905
    "Office Industrial Medical Digital Freight Catering Print Electric Hardware Textile Logistics Chemicals"
).split()
NAME_SUFFIX = ("Ltd", "Inc.", "GmbH", "LLC", "Co.", "Supply", "Group", "Partners")
STREETS = "Harbour Mill Station Church Market Bridge Park Victoria Albert High".split()  # noqa: SIM905
STREET_KINDS = ("Street", "Road", "Lane", "Avenue", "Way")
CITIES = "Leeds Bristol Glasgow Dublin Hamburg Lyon Denver Austin Portland Toronto".split()  # noqa: SIM905
PRODUCTS = (  # noqa: SIM905
    "A4 copier paper|Toner cartridge black|USB-C cable 2m|Office chair|Desk lamp|Consulting hours|"
    "Installation service|Safety gloves|Hard hat|Forklift rental|Pallet wrap|Cleaning supplies|"
    "Laptop stand|Monitor 27 inch|Network switch|Cat6 cable box|Printer service|Shipping|"
    "Coffee beans 1kg|Water cooler rental|Label rolls|Packing tape|Cardboard boxes|Training session|"
    "Software licence|Support plan|Hand sanitiser|First aid kit|Extension lead|Whiteboard markers"
).split("|")
INVOICE_NUMBER_LABELS = ("Invoice No:", "Invoice #", "Invoice Number:", "Inv. No.", "Reference:")
DATE_LABELS = ("Date:", "Invoice date:", "Issued:", "Date of issue:")
DUE_LABELS = ("Due date:", "Payment due:", "Due:")
SUBTOTAL_LABELS = ("Subtotal", "Sub-total", "Net amount", "Subtotal:")
TAX_LABELS = ("Tax", "VAT", "Sales tax", "GST")
TOTAL_LABELS = ("Total", "Total due", "Amount due", "Balance due", "TOTAL")
ITEM_HEADERS = (
    ("Description", "Qty", "Unit price", "Amount"),
    ("Item", "Quantity", "Price", "Total"),
    ("Details", "Units", "Rate", "Line total"),
)
MONTHS = "January February March April May June July August September October November December".split()  # noqa: SIM905
CURRENCIES = ("$", "£", "€", "")
TAX_RATES = (Decimal(0), Decimal(5), Decimal(8), Decimal(10), Decimal(20))
# Line items per invoice: most fit on one page, some run over two or three.
ITEM_COUNTS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30)
FIRST_PAGE_ITEMS = 12  # line items that fit under the first page's header
LATER_PAGE_ITEMS = 14
INVOICES = 2000
VENDORS = 240
MISMATCH_SHARE = 0.1  # invoices whose printed totals do not add up
# OCR's usual misreadings, made in a share of the words outside the fields ("Tota1", "que:"), so
# that a model does not lean on every label being spelt right. Field words are left as printed:
# their values are what is scored.
MISREADINGS = {"l": "1", "1": "l", "O": "0", "o": "0", "e": "c", "d": "q", "S": "5", "I": "l", "rn": "m"}
MISREAD_SHARE = 0.03
GENERATOR_SEED = 2026  # the built-in invoices never depend on config.seed: one corpus everywhere
CENT = Decimal("0.01")


def vendor_names() -> list[str]:
    """VENDORS different company names, always the same ones."""
    rng = random.Random(GENERATOR_SEED)
    names: list[str] = []
    while len(names) < VENDORS:
        name = f"{rng.choice(NAME_FIRST)} {rng.choice(NAME_SECOND)} {rng.choice(NAME_SUFFIX)}"
        if name not in names:
            names.append(name)
    return names


def held_out(name: str) -> bool:
    """Whether a vendor name is kept for validation: every fifth first word never trains."""
    return NAME_FIRST.index(name.split()[0]) % 5 == 4


def money(value: Decimal, currency: str, thousands: bool) -> str:
    text = f"{value:,.2f}" if thousands else f"{value:.2f}"
    return currency + text


def written_date(year: int, month: int, day: int, style: int) -> str:
    return (
        f"{year}-{month:02d}-{day:02d}",
        f"{day:02d}/{month:02d}/{year}",
        f"{day:02d}.{month:02d}.{year}",
        f"{day} {MONTHS[month - 1][:3]} {year}",
        f"{MONTHS[month - 1]} {day}, {year}",
    )[style]


def misread(word: str, rng: random.Random) -> str:
    """`word` with one of MISREADINGS made in it, where it has a letter to misread."""
    places = [(i, seen) for seen in MISREADINGS for i in range(len(word)) if word.startswith(seen, i)]
    if not places:
        return word
    index, seen = rng.choice(places)
    return word[:index] + MISREADINGS[seen] + word[index + len(seen) :]


# Where a word's ink lies in its line of type, as shares of the line's height from its top: capitals,
# digits and tall letters reach CAP_TOP, other letters X_TOP; the ink ends at the BASELINE unless a
# letter descends below it. An OCR engine's box is the ink's (DejaVu Sans's proportions; most sans
# fonts are close), so the built-in boxes are too.
CAP_TOP, X_TOP, BASELINE = 0.17, 0.33, 0.8
TALL = set("bdfhijklt0123456789$£€%#&/()[]{}|!?'\"")
DESCENDING = set("gjpqy,;()[]{}|")


def ink_extent(word: str) -> tuple[float, float]:
    """The top and bottom of the word's ink, as shares of its line's height."""
    top = CAP_TOP if any(c.isupper() or c in TALL for c in word) else X_TOP
    return top, 1.0 if any(c in DESCENDING for c in word) else BASELINE


class PageWriter:
    """Lays words out on a page, left to right from a point, and records each word's box (around its
    ink: see ink_extent) and tag. Coordinates are on the GRID; a character is 0.55 of the font's
    size wide, and a line of type as high as the size."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.page = Page([], [], [])

    def write(
        self, text: str, x: float, y: float, size: float = 14, kind: str = "", right: bool = False
    ) -> None:
        """`text` at (x, y), its words tagged as one `kind` field (B- then I-); right-aligned to x."""
        width = 0.55 * size
        if right:
            x -= len(text) * width
        for position, word in enumerate(text.split()):
            if not kind and self.rng.random() < MISREAD_SHARE:
                word = misread(word, self.rng)
            # A scan is never quite straight: each box is off by a unit or two.
            jitter = self.rng.uniform(-1.5, 1.5)
            top, bottom = ink_extent(word)
            left, right = x + jitter, x + len(word) * width + jitter
            box = (left, y + top * size + jitter, right, y + bottom * size + jitter)
            self.page.words.append(word)
            self.page.boxes.append(tuple(min(GRID, max(0, round(v))) for v in box))  # type: ignore[arg-type]
            assert self.page.tags is not None
            self.page.tags.append("O" if not kind else f"{'B' if position == 0 else 'I'}-{kind}")
            x += (len(word) + 1) * width


@dataclass
class Drawn:
    """One built-in invoice's content before it is laid out."""

    vendor: str
    customer: str
    number: str
    date: str
    due: str
    currency: str
    thousands: bool
    items: list[tuple[str, Decimal, Decimal, Decimal]]  # description, quantity, unit price, amount
    subtotal: Decimal
    tax_rate: Decimal
    tax: Decimal
    total: Decimal
    layout: int
    labels: dict[str, str] = field(default_factory=dict)


def draw_invoice(vendor: str, customer: str, rng: random.Random) -> Drawn:
    items = []
    for description in rng.sample(PRODUCTS, rng.choice(ITEM_COUNTS)):
        quantity = Decimal(rng.choice((1, 1, 2, 3, 4, 5, 6, 10, 12, 20, 25, 40)))
        if description in ("Consulting hours", "Training session") and rng.random() < 0.5:
            quantity = Decimal(rng.randint(1, 16)) / 2  # hours: 0.5, 1, 1.5 ...
        price = (Decimal(rng.randint(50, 200_000)) / 100).quantize(CENT)
        items.append((description, quantity, price, (quantity * price).quantize(CENT)))
    subtotal = sum((item[3] for item in items), Decimal(0))
    rate = rng.choice(TAX_RATES)
    tax = (subtotal * rate / 100).quantize(CENT)
    total = subtotal + tax
    if rng.random() < MISMATCH_SHARE:  # a typo in the totals: they no longer add up
        error = (Decimal(rng.randint(1, 9999)) / 100).quantize(CENT)
        if rng.random() < 0.5:
            total += error
        else:
            subtotal += error
            total += error
    year, month, day = rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)
    style = rng.randrange(5)
    labels = {
        "number": rng.choice(INVOICE_NUMBER_LABELS),
        "date": rng.choice(DATE_LABELS),
        "due": rng.choice(DUE_LABELS),
        "subtotal": rng.choice(SUBTOTAL_LABELS),
        "tax": f"{rng.choice(TAX_LABELS)} ({rate}%)" if rng.random() < 0.7 else rng.choice(TAX_LABELS),
        "total": rng.choice(TOTAL_LABELS),
    }
    prefix = rng.choice(("INV-", "INV", "", "F-", "No."))
    return Drawn(
        vendor=vendor,
        customer=customer,
        number=f"{prefix}{rng.randint(1000, 999_999)}",
        date=written_date(year, month, day, style),
        due=written_date(year + (month == 12), month % 12 + 1, day, style),
        currency=rng.choice(CURRENCIES),
        thousands=rng.random() < 0.6,
        items=items,
        subtotal=subtotal,
        tax_rate=rate,
        tax=tax,
        total=total,
        layout=rng.randrange(3),
        labels=labels,
    )


def address(rng: random.Random) -> tuple[str, str]:
    return (
        f"{rng.randint(1, 240)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}",
        f"{rng.choice(CITIES)} {rng.randint(10, 99)}{rng.choice('ABCDEFGH')}{rng.randint(1, 9)}",
    )


def write_header(writer: PageWriter, drawn: Drawn, rng: random.Random) -> float:
    """The first page's header in one of three layouts; returns where the items start (y)."""
    street, city = address(rng)
    customer_street, customer_city = address(rng)
    labels = drawn.labels
    keys = (
        (labels["number"], drawn.number, "INVOICE_NUMBER"),
        (labels["date"], drawn.date, "DATE"),
        (labels["due"], drawn.due, ""),
    )
    if drawn.layout == 0:  # vendor top left, the invoice's numbers top right, the customer below
        writer.write(drawn.vendor, 60, 50, 26, "VENDOR")
        writer.write(street, 60, 90)
        writer.write(city, 60, 110)
        writer.write("INVOICE", 640, 50, 26)
        for row, (label, value, kind) in enumerate(keys):
            writer.write(label, 600, 100 + 22 * row)
            writer.write(value, 940, 100 + 22 * row, kind=kind, right=True)
        writer.write("Bill to:", 60, 170)
        writer.write(drawn.customer, 60, 192, 16)
        writer.write(customer_street, 60, 214)
        return 290
    if drawn.layout == 1:  # the title top left, the vendor top right, key-value rows on the left
        writer.write("Invoice", 60, 50, 30)
        writer.write(drawn.vendor, 940, 50, 22, "VENDOR", right=True)
        writer.write(street, 940, 84, right=True)
        writer.write(city, 940, 104, right=True)
        for row, (label, value, kind) in enumerate(keys):
            writer.write(label, 60, 150 + 22 * row)
            writer.write(value, 260, 150 + 22 * row, kind=kind)
        writer.write("Customer", 600, 150)
        writer.write(drawn.customer, 600, 172, 16)
        writer.write(customer_city, 600, 194)
        return 270
    # The vendor across the top, then a row of labels over a row of values.
    writer.write(drawn.vendor, 300, 40, 28, "VENDOR")
    writer.write(f"{street}, {city}", 300, 80)
    for column, (label, value, kind) in enumerate(keys):
        writer.write(label.rstrip(":"), 60 + 300 * column, 140)
        writer.write(value, 60 + 300 * column, 162, kind=kind)
    writer.write("Sold to", 60, 210)
    writer.write(drawn.customer, 160, 210, 16)
    return 270


def write_items(writer: PageWriter, drawn: Drawn, items: list, y: float, headers: tuple[str, ...]) -> float:
    """The item table's header row and `items`, one per line; returns the y after them."""
    columns = (60, 600, 780, 940)
    for text, x, right in zip(headers, columns, (False, True, True, True), strict=True):
        writer.write(text, x, y, right=right)
    y += 30
    for description, quantity, price, amount in items:
        writer.write(description, columns[0], y, kind="ITEM_DESCRIPTION")
        writer.write(f"{quantity.normalize():f}", columns[1], y, kind="ITEM_QUANTITY", right=True)
        writer.write(
            money(price, drawn.currency, drawn.thousands), columns[2], y, kind="ITEM_UNIT_PRICE", right=True
        )
        writer.write(
            money(amount, drawn.currency, drawn.thousands), columns[3], y, kind="ITEM_AMOUNT", right=True
        )
        y += 24
    return y


def write_totals(writer: PageWriter, drawn: Drawn, y: float) -> None:
    rows = [(drawn.labels["subtotal"], drawn.subtotal, "SUBTOTAL")]
    if drawn.tax_rate or writer.rng.random() < 0.5:  # a zero tax is printed on some invoices only
        rows.append((drawn.labels["tax"], drawn.tax, "TAX"))
    rows.append((drawn.labels["total"], drawn.total, "TOTAL"))
    for label, value, kind in rows:
        writer.write(label, 640, y + 10)
        writer.write(money(value, drawn.currency, drawn.thousands), 940, y + 10, kind=kind, right=True)
        y += 26
    writer.write(
        writer.rng.choice(("Thank you for your business.", "Payment within 30 days.", "")), 60, y + 40
    )


def lay_out(drawn: Drawn, rng: random.Random) -> list[Page]:
    """The invoice's pages: the header and the first items on page 1, further items on the next
    pages (under a line naming the invoice again), the totals under the last item."""
    chunks = [drawn.items[:FIRST_PAGE_ITEMS]]
    rest = drawn.items[FIRST_PAGE_ITEMS:]
    while rest:
        chunks.append(rest[:LATER_PAGE_ITEMS])
        rest = rest[LATER_PAGE_ITEMS:]
    headers = rng.choice(ITEM_HEADERS)
    pages = []
    for number, chunk in enumerate(chunks, 1):
        writer = PageWriter(rng)
        if number == 1:
            y = write_header(writer, drawn, rng)
        else:
            writer.write("Invoice", 60, 50, 16)
            writer.write(drawn.number, 160, 50, 16, "INVOICE_NUMBER")
            writer.write("(continued)", 300, 50, 16)
            y = 110
        y = write_items(writer, drawn, chunk, y, headers)
        if number == len(chunks):
            write_totals(writer, drawn, y)
        if len(chunks) > 1:
            writer.write(f"Page {number} of {len(chunks)}", 800, 960)
        pages.append(in_reading_order(writer.page))
    return pages


@functools.cache  # 2 s to draw; `check` and the server's examples ask again
def builtin_invoices() -> list[Invoice]:
    """The built-in corpus: INVOICES invoices from VENDORS vendors, drawn from a fixed seed."""
    rng = random.Random(GENERATOR_SEED)
    vendors = vendor_names()
    invoices = []
    for index in range(INVOICES):
        vendor = vendors[index % len(vendors)]
        customer = rng.choice([name for name in vendors if name != vendor])
        drawn = draw_invoice(vendor, customer, rng)
        invoices.append(Invoice(lay_out(drawn, rng), name=drawn.number, group=vendor))
    return invoices


def builtin_split(invoices: list[Invoice]) -> tuple[list[Invoice], list[Invoice]]:
    """Training and validation: the held-out vendors' invoices validate, and so do a fifth of the
    others' vendors (each vendor's invoices all on one side)."""
    val_groups = {name for name in vendor_names() if held_out(name)}
    others = sorted({invoice.group for invoice in invoices} - val_groups)
    random.Random(GENERATOR_SEED).shuffle(others)
    val_groups |= set(others[: len(others) // 16])
    train = [invoice for invoice in invoices if invoice.group not in val_groups]
    val = [invoice for invoice in invoices if invoice.group in val_groups]
    return train, val


# --- Files -----------------------------------------------------------------------------------


def page_from_json(record: dict, where: str) -> Page:
    """A page of a data file or of an invoice to extract from (see the module's docstring)."""
    words, boxes, tags = record.get("words"), record.get("boxes"), record.get("tags")
    if not isinstance(words, list) or not isinstance(boxes, list) or len(words) != len(boxes):
        raise ProjectError(f"{where}: a page needs lists of 'words' and 'boxes' of the same length")
    if tags is not None and (not isinstance(tags, list) or len(tags) != len(words)):
        raise ProjectError(f"{where}: 'tags' needs one tag per word")
    width, height = record.get("width") or GRID, record.get("height") or GRID
    scaled = []
    for box in boxes:
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise ProjectError(f"{where}: each box is [x0, y0, x1, y1], got {box!r}")
        x0, y0, x1, y1 = (box[0] / width, box[1] / height, box[2] / width, box[3] / height)
        scaled.append(tuple(min(GRID, max(0, round(v * GRID))) for v in (x0, y0, x1, y1)))
    if tags is not None:
        unknown = sorted(set(tags) - set(TAGS))
        if unknown:
            raise ProjectError(
                f"{where}: unknown tags {', '.join(map(str, unknown[:4]))}; tags are {', '.join(TAGS)}"
            )
    return in_reading_order(Page([str(word) for word in words], scaled, tags))


def invoice_from_json(record: object, where: str) -> Invoice:
    if not isinstance(record, dict) or not isinstance(record.get("pages"), list) or not record["pages"]:
        raise ProjectError(f"{where}: an invoice is an object with a non-empty list of 'pages'")
    pages = [page_from_json(page, f"{where}, page {n}") for n, page in enumerate(record["pages"], 1)]
    return Invoice(pages, name=str(record.get("name", where)), group=str(record.get("group", "")))


def read_invoice_file(path: Path) -> list[Invoice]:
    """The invoices of a .json (a list of them, or one) or .jsonl file (one per line)."""
    if not path.is_file():
        raise ProjectError(f"no such data file: {path}")
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        elif path.suffix == ".json":
            loaded = json.loads(path.read_text())
            records = loaded if isinstance(loaded, list) else [loaded]
        else:
            raise ProjectError(f"cannot read {path}: invoices come as a .json or .jsonl file")
    except json.JSONDecodeError as error:
        raise ProjectError(f"{path} is not valid JSON ({error})") from None
    return [invoice_from_json(record, f"{path.name}, invoice {n}") for n, record in enumerate(records, 1)]


def read_splits(config: Config) -> tuple[list[Invoice], list[Invoice]]:
    """The training and validation invoices. A file is split by invoice (or by its "group" field
    where it has one), seeded by config.seed, val_fraction of them for validation."""
    if config.dataset == "builtin":
        return builtin_split(builtin_invoices())
    invoices = read_invoice_file(Path(config.dataset).expanduser())
    unlabelled = [invoice.name for invoice in invoices if any(page.tags is None for page in invoice.pages)]
    if unlabelled:
        raise ProjectError(f"{unlabelled[0]} has a page without 'tags': training needs a tag for every word")
    groups = sorted({invoice.group or invoice.name for invoice in invoices})
    random.Random(config.seed).shuffle(groups)
    val_groups = set(groups[: max(1, round(len(groups) * config.val_fraction))])
    train = [i for i in invoices if (i.group or i.name) not in val_groups]
    val = [i for i in invoices if (i.group or i.name) in val_groups]
    if not train or not val:
        raise ProjectError(f"{config.dataset} has too few invoices to split ({len(invoices)}); add more")
    return train, val


def split_contents(config: Config) -> tuple[list[str], list[str]]:
    """What identifies each training and validation invoice, for counting leaks: its vendor where
    the data groups invoices (the built-in ones do), else its words."""
    train, val = read_splits(config)
    return [i.group or i.text for i in train], [i.group or i.text for i in val]


# --- Encoding --------------------------------------------------------------------------------

SHAPE_RUNS = re.compile(r"(.)\1+")


def word_form(word: str) -> str:
    """What the vocabulary holds of a word: lower case, every digit a 0 ("INV-20417" -> "inv-00000"),
    so numbers share forms and a model learns an amount's form, not each amount."""
    return re.sub(r"\d", "0", word.lower())


def word_shape(word: str) -> str:
    """A word's outline: capitals X, lower case x, digits d, each run written once ("Acme" -> "Xx",
    "$1,357.95" -> "$d,d.d")."""
    outline = "".join("X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c for c in word)
    return SHAPE_RUNS.sub(r"\1", outline)


@dataclass
class LayoutPreprocessor:
    """Pages -> word ids, shape ids and boxes, padded to max_length words; knows the tag names.
    What a run saves (preprocessor.json) so that serving encodes as training did."""

    words: list[str]  # the vocabulary of word forms; ids PAD and UNKNOWN come first
    shapes: list[str]
    labels: list[str]
    max_length: int

    def __post_init__(self) -> None:
        self.word_ids = {word: i for i, word in enumerate(self.words)}
        self.shape_ids = {shape: i for i, shape in enumerate(self.shapes)}
        self.tag_ids = {tag: i for i, tag in enumerate(self.labels)}

    @classmethod
    def fit(cls, pages: list[Page], vocab_size: int, max_length: int) -> LayoutPreprocessor:
        """The vocab_size - 2 word forms and the shapes seen at least twice in `pages`."""
        forms = Counter(word_form(w) for page in pages for w in page.words)
        shapes = Counter(word_shape(w) for page in pages for w in page.words)
        words = [form for form, count in forms.most_common(max(vocab_size - 2, 0)) if count > 1]
        kept_shapes = [shape for shape, count in shapes.most_common() if count > 1]
        return cls(["[PAD]", "[UNK]", *words], ["[PAD]", "[UNK]", *kept_shapes], list(TAGS), max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def window_starts(self, page: Page) -> range:
        """Where each window of max_length words begins: a longer page is read (and trained on,
        and scored) in several. An empty page has one, empty, window."""
        return range(0, max(len(page.words), 1), self.max_length)

    def encode(self, page: Page, start: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Word ids, shape ids and boxes ([max_length, 4]) of the page's words from `start` on."""
        words = page.words[start : start + self.max_length]
        word_ids = torch.zeros(self.max_length, dtype=torch.long)
        shape_ids = torch.zeros(self.max_length, dtype=torch.long)
        boxes = torch.zeros(self.max_length, 4, dtype=torch.long)
        for position, word in enumerate(words):
            word_ids[position] = self.word_ids.get(word_form(word), UNKNOWN)
            shape_ids[position] = self.shape_ids.get(word_shape(word), UNKNOWN)
        if words:
            boxes[: len(words)] = torch.tensor(page.boxes[start : start + len(words)])
        return word_ids, shape_ids, boxes

    def encode_tags(self, page: Page, start: int = 0) -> torch.Tensor:
        """The tag ids of the words `encode(page, start)` encodes; IGNORE after them."""
        tags = torch.full((self.max_length,), IGNORE, dtype=torch.long)
        known = (page.tags or [])[start : start + self.max_length]
        tags[: len(known)] = torch.tensor([self.tag_ids[tag] for tag in known], dtype=torch.long)
        return tags

    def save(self, run_dir: Path) -> None:
        saved = {
            "labels": self.labels,
            "max_length": self.max_length,
            "shapes": self.shapes,
            "words": self.words,
        }
        (run_dir / "preprocessor.json").write_text(json.dumps(saved) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> LayoutPreprocessor:
        saved = json.loads((run_dir / "preprocessor.json").read_text())
        return cls(saved["words"], saved["shapes"], saved["labels"], saved["max_length"])


def load_preprocessor(run_dir: Path) -> LayoutPreprocessor:
    return LayoutPreprocessor.load(run_dir)


class InvoicePages(torch.utils.data.Dataset):
    """A split's pages encoded once, up front, as ((word ids, shape ids, boxes), targets) rows.

    A page of more than max_length words takes one row per window of max_length words, as the
    predictor reads it, so no word goes untrained or unscored. A row's targets are its words' tag
    ids (IGNORE on padding) and then, in the last column, the row's number: metrics put each
    invoice's pages back together by it (`rows_of_page`). Validation rows are numbered from 0 and
    training rows after them (`first_number`), so a row's number says which split it is from."""

    def __init__(self, invoices: list[Invoice], preprocessor: LayoutPreprocessor, first_number: int = 0):
        self.invoices = invoices
        self.pages = [page for invoice in invoices for page in invoice.pages]
        windows: list[tuple[Page, int]] = []  # (page, its first word in the row)
        self.rows_of_page: list[list[int]] = []
        for page in self.pages:
            starts = preprocessor.window_starts(page)
            self.rows_of_page.append(list(range(len(windows), len(windows) + len(starts))))
            windows += [(page, start) for start in starts]
        # A split is never empty (read_splits refuses a file that leaves one side without invoices).
        encoded = [preprocessor.encode(page, start) for page, start in windows]
        self.word_ids, self.shape_ids, self.boxes = (torch.stack(part) for part in zip(*encoded, strict=True))
        tags = torch.stack([preprocessor.encode_tags(page, start) for page, start in windows])
        index = torch.arange(first_number, first_number + len(windows))[:, None]
        self.targets = torch.cat([tags, index], dim=1)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        return (self.word_ids[index], self.shape_ids[index], self.boxes[index]), self.targets[index]


@dataclass
class TaskData:
    train: InvoicePages
    val: InvoicePages
    preprocessor: LayoutPreprocessor


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the invoices, split them, fit (or load) the vocabulary, encode both splits' pages."""
    if config.model_name:
        raise ProjectError(
            "model_name is not supported for document understanding yet: the layout model of"
            " network.py is trained here (leave model_name empty)"
        )
    train, val = read_splits(config)
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        pages = [page for invoice in train for page in invoice.pages]
        preprocessor = LayoutPreprocessor.fit(pages, config.vocab_size, config.max_length)
    val_pages = InvoicePages(val, preprocessor)
    return TaskData(InvoicePages(train, preprocessor, first_number=len(val_pages)), val_pages, preprocessor)


def write_examples(folder: Path, count: int, scans: bool = False) -> list[Path]:
    """The first `count` validation invoices as JSON files, words and boxes without their tags:
    what `runner.py predict` and POST /predict take. With `scans`, also the invoice's pages as a
    scanned TIFF (one image a page), for an OCR engine to read."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for invoice in builtin_split(builtin_invoices())[1][:count]:
        stem = "invoice-" + re.sub(r"[^\w-]", "", invoice.name)
        path = folder / f"{stem}.json"
        path.write_text(json.dumps(invoice.as_json()) + "\n")
        written.append(path)
        if scans:
            from scans import save_scan

            written.append(save_scan(invoice.pages, folder / f"{stem}.tif"))
    return written


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="write built-in validation invoices to try the model on")
    parser.add_argument("folder", type=Path, nargs="?", default=Path("examples"))
    parser.add_argument("count", type=int, nargs="?", default=5)
    parser.add_argument("--scans", action="store_true", help="each invoice as a scanned TIFF (for tesseract)")
    arguments = parser.parse_args()
    for path in write_examples(arguments.folder, arguments.count, arguments.scans):
        print(path)
