// The invoice playground: paste an invoice's OCR output (its pages' words and boxes) as JSON, drop
// its .json file, or pick a validation invoice; POST /predict tags every word and reads the fields
// off the tags. The page shows whether the totals add up (the flags, first), the header fields, the
// line items of every page, and each page drawn as the model tagged it: a white page with each word
// at its box, the words of a field marked in the field's colour. Everything the model or the file
// holds goes into the page as text (textContent, SVG text nodes), never as HTML.

import {
  acceptFiles,
  flagField,
  percent,
  postJson,
  revealResult,
  showError,
  showExamples,
  showServedModel,
  submitOnCtrlEnter,
  uploadTooLarge,
} from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
const GRID = 1000; // the server's boxes are on a GRID x GRID grid over the page
const HEADER_FIELDS = ["vendor", "invoice_number", "date", "subtotal", "tax", "total"];
// Each field's name, in the order of the legend; its colour is the stylesheet's .field-<kind>.
const FIELD_NAMES = {
  VENDOR: "Vendor",
  INVOICE_NUMBER: "Invoice number",
  DATE: "Date",
  SUBTOTAL: "Subtotal",
  TAX: "Tax",
  TOTAL: "Total",
  ITEM_DESCRIPTION: "Item description",
  ITEM_QUANTITY: "Quantity",
  ITEM_UNIT_PRICE: "Unit price",
  ITEM_AMOUNT: "Amount",
};
const ADDING_UP = new Set(["line_items_do_not_sum_to_subtotal", "subtotal_and_tax_do_not_make_total"]);

const form = document.getElementById("invoice-form");
const invoiceBox = document.getElementById("invoice");
const button = document.getElementById("extract");
const fileInput = document.getElementById("file");
const dropZone = document.getElementById("drop-zone");
const errorBox = document.getElementById("error");
const verdict = document.getElementById("verdict");
const flags = document.getElementById("flags");
const flagsHeading = document.getElementById("flags-heading");
const flagList = document.getElementById("flag-list");
const extraction = document.getElementById("extraction");
const fieldTable = document.getElementById("header-fields");
const itemTable = document.getElementById("line-items");
const itemsWrap = document.getElementById("items-wrap");
const noItems = document.getElementById("no-items");
const legend = document.getElementById("legend");
const pagesBox = document.getElementById("pages");
const examples = document.getElementById("examples");
let latest = 0; // the number of the latest request: an older answer arriving late is dropped
// What the box holds, for the error messages: a file's or an example's name, "" once it is edited.
let source = "";

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** A message on one line: the browser's JSON errors quote the text, line breaks included. */
function oneLine(message) {
  return String(message).replace(/\s+/g, " ").trim();
}

/** VENDOR -> "field-vendor", the class that gives a field its colour (a kind of other data: a neutral one). */
function fieldClass(kind) {
  const slug = String(kind).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return `field-${slug || "other"}`;
}

function fieldName(kind) {
  return FIELD_NAMES[kind] || String(kind).replaceAll("_", " ").toLowerCase();
}

/** The field a tag belongs to: "B-TOTAL" -> "TOTAL"; "" for O. */
function kindOf(tag) {
  return /^[BI]-/.test(tag) ? tag.slice(2) : "";
}

function swatch(kind) {
  const mark = document.createElement("span");
  mark.className = `swatch ${fieldClass(kind)}`;
  mark.setAttribute("aria-hidden", "true");
  return mark;
}

function hiddenText(words) {
  const span = document.createElement("span");
  span.className = "visually-hidden";
  span.textContent = words;
  return span;
}

/** A value not read: a dash to see, "not read" to hear. */
function notRead() {
  const dash = document.createElement("span");
  dash.className = "not-read";
  dash.setAttribute("aria-hidden", "true");
  dash.textContent = "\u2013";
  return [dash, hiddenText("not read")];
}

function cell(tag, content, className = "") {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (content === null || content === undefined) element.append(...notRead());
  else element.textContent = String(content);
  return element;
}

// --- Amounts: decimals with two places, added up exactly (in cents, as BigInt) -------------------

function cents(amount) {
  const match = /^(-?)(\d+)\.(\d{2})$/.exec(String(amount ?? ""));
  if (!match) return null;
  const value = BigInt(match[2]) * 100n + BigInt(match[3]);
  return match[1] ? -value : value;
}

function decimal(value) {
  const sign = value < 0n ? "-" : "";
  const size = value < 0n ? -value : value;
  return `${sign}${size / 100n}.${String(size % 100n).padStart(2, "0")}`;
}

function sumOf(amounts) {
  return amounts.reduce((total, amount) => total + (cents(amount) ?? 0n), 0n);
}

// --- The flags ---------------------------------------------------------------------------------

/** A flag in words, with the figures that do not agree where it is about adding up. */
function flagText(flag, result) {
  // The check that raised it, with its two figures (the server's `checks`), where one did.
  const check = (result.checks || []).find((c) => c.flag === flag && !c.agrees);
  if (flag === "line_items_do_not_sum_to_subtotal") {
    if (!check) return "The line items do not add up to the subtotal.";
    const against = check.stated_as === "subtotal" ? "the subtotal" : `the ${check.stated_as},`;
    return `The line items add up to ${check.computed}, not to ${against} ${check.stated}.`;
  }
  if (flag === "subtotal_and_tax_do_not_make_total") {
    if (!check) return "The subtotal and tax do not make the total.";
    if (result.tax === null || result.tax === undefined) {
      return `The subtotal ${check.computed}, with no tax read, is not the total ${check.stated}.`;
    }
    return `The subtotal ${result.subtotal} and tax ${result.tax} make ${check.computed}, not the total ${check.stated}.`;
  }
  const words = {
    no_total: "No total was found, so the totals cannot be checked.",
    no_line_items: "No line items were found.",
    line_item_without_amount: "A line item has no amount, so the items cannot be added up.",
  };
  return words[flag] || `${flag.charAt(0).toUpperCase()}${flag.slice(1).replaceAll("_", " ")}.`;
}

function showFlags(result) {
  const found = Array.isArray(result.flags) ? result.flags : [];
  flagsHeading.textContent = found.some((flag) => ADDING_UP.has(flag))
    ? "The totals do not add up: check this invoice before booking it"
    : "Check this invoice before booking it";
  flagList.replaceChildren(
    ...found.map((flag) => {
      const item = document.createElement("li");
      item.dataset.flag = flag;
      item.textContent = flagText(flag, result);
      return item;
    }),
  );
  flags.hidden = found.length === 0;
}

// --- The tables --------------------------------------------------------------------------------

function fieldRows(result) {
  const where = result.fields || {};
  return HEADER_FIELDS.map((name) => {
    const kind = name.toUpperCase();
    const found = where[name];
    const value = result[name];
    const row = document.createElement("tr");
    row.dataset.field = name;
    row.dataset.value = value ?? "";
    const heading = document.createElement("th");
    heading.scope = "row";
    heading.append(swatch(kind), fieldName(kind));
    const shown = cell("td", value, "field-value");
    if (value === null || value === undefined) shown.classList.add("muted");
    row.append(
      heading,
      shown,
      cell("td", found ? found.text : null, "field-written"),
      cell("td", found ? found.page : null, "number"),
      cell("td", found ? percent(found.score) : null, "number"),
    );
    return row;
  });
}

function itemRows(items) {
  return items.map((item, index) => {
    const row = document.createElement("tr");
    row.dataset.page = String(item.page);
    row.dataset.item = String(index + 1);
    row.tabIndex = 0; // reachable by keyboard, to show where the row is on its page
    pointsAtItem(row, index + 1);
    row.append(
      cell("td", item.description, "item-description"),
      cell("td", item.quantity, "number"),
      cell("td", item.unit_price, "number"),
      cell("td", item.amount, "number"),
      cell("td", item.page, "number"),
    );
    return row;
  });
}

/** Line item `number` marked on its page and in the table, or unmarked (`on` false). */
function markItem(number, on) {
  const shown = `#line-items [data-item="${number}"], #pages [data-item="${number}"]`;
  for (const element of document.querySelectorAll(shown)) element.classList.toggle("active", on);
}

/** Pointing at `element` (or focusing it) marks line item `number` wherever it is shown. */
function pointsAtItem(element, number) {
  for (const [event, on] of [["mouseenter", true], ["mouseleave", false], ["focus", true], ["blur", false]]) {
    element.addEventListener(event, () => markItem(number, on));
  }
}

/** The sum of the amounts read, under the items: what the subtotal must be. */
function itemTotal(items) {
  const missing = items.filter((item) => cents(item.amount) === null).length;
  const row = document.createElement("tr");
  const label = document.createElement("th");
  label.scope = "row";
  label.colSpan = 3;
  label.textContent = missing
    ? `Sum of the amounts read (${plural(missing, "row")} without one)`
    : "Sum of the amounts";
  row.append(label, cell("td", decimal(sumOf(items.map((item) => item.amount))), "number"), document.createElement("td"));
  return row;
}

// --- The pages, drawn ----------------------------------------------------------------------------

function svgElement(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

/** The page's height / width: from the "width" and "height" it was sent with, else square (the grid's). */
function aspectOf(page) {
  const width = Number(page?.width);
  const height = Number(page?.height);
  return width > 0 && height > 0 ? height / width : 1;
}

/**
 * One page as an SVG: a white sheet, each word written at its box (scaled from the grid, its text
 * stretched to the box's width), the words of a field on a mark in the field's colour, and a
 * dashed outline around each line item's row (`items`: all the invoice's, numbered as the table).
 */
function drawPage(words, number, count, aspect, items) {
  const height = GRID * aspect;
  const scaleY = height / GRID;
  const figure = document.createElement("figure");
  figure.className = "invoice-page";
  const caption = document.createElement("figcaption");
  caption.id = `page-${number}-caption`;
  const tagged = words.filter((word) => word.tag !== "O").length;
  caption.textContent = `Page ${number} of ${count}: ${plural(words.length, "word")}, ${tagged} in a field`;
  const svg = svgElement("svg", { viewBox: `0 0 ${GRID} ${height}`, role: "img", "aria-labelledby": caption.id });
  svg.dataset.page = String(number);
  svg.append(svgElement("rect", { class: "sheet", x: 0, y: 0, width: GRID, height }));
  for (const word of words) {
    const [x0, y0, x1, y1] = word.box;
    const top = y0 * scaleY;
    const tall = Math.max((y1 - y0) * scaleY, 1);
    const wide = x1 - x0;
    const group = svgElement("g", { class: "word" });
    group.dataset.tag = word.tag;
    const kind = kindOf(word.tag);
    if (kind) {
      const title = svgElement("title");
      title.textContent = `${fieldName(kind)}: ${word.text}`;
      group.append(title, svgElement("rect", { class: `mark ${fieldClass(kind)}`, x: x0 - 2, y: top - 2, width: Math.max(wide, 0) + 4, height: tall + 4, rx: 2 }));
    }
    const text = svgElement("text", { x: x0, y: top + tall * 0.8, "font-size": (tall * 0.95).toFixed(1) });
    if (wide > 0) {
      text.setAttribute("textLength", String(wide));
      text.setAttribute("lengthAdjust", "spacingAndGlyphs");
    }
    text.textContent = word.text;
    group.append(text);
    svg.append(group);
  }
  items.forEach((item, index) => {
    if (item.page !== number || !Array.isArray(item.box)) return;
    const [x0, y0, x1, y1] = item.box;
    // Wide enough to clear the fields' marks, low enough not to cross the next row's outline.
    const outline = svgElement("rect", {
      class: "item-row", x: x0 - 4, y: y0 * scaleY - 1.5, width: x1 - x0 + 8, height: (y1 - y0) * scaleY + 3, rx: 2,
    });
    outline.dataset.item = String(index + 1);
    const title = svgElement("title");
    title.textContent = `Line item ${index + 1}: ${[item.description, item.amount].filter(Boolean).join(", ")}`;
    outline.append(title);
    pointsAtItem(outline, index + 1);
    svg.append(outline);
  });
  figure.append(svg, caption);
  return figure;
}

/** One legend item per field found on the pages, in the fields' order, with its number of words. */
function legendItems(pages) {
  const counts = new Map();
  for (const word of pages.flat()) {
    const kind = kindOf(word.tag);
    if (kind) counts.set(kind, (counts.get(kind) || 0) + 1);
  }
  const order = Object.keys(FIELD_NAMES);
  const rank = (kind) => (order.includes(kind) ? order.indexOf(kind) : order.length);
  return [...counts]
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([kind, count]) => {
      const item = document.createElement("li");
      item.dataset.kind = kind;
      const number = document.createElement("span");
      number.className = "muted";
      number.textContent = ` \u00d7 ${count}`;
      item.append(swatch(kind), fieldName(kind), number);
      return item;
    });
}

// --- Extracting --------------------------------------------------------------------------------

function showExtraction(invoice, result) {
  const found = HEADER_FIELDS.filter((name) => result[name] !== null && result[name] !== undefined).length;
  const items = Array.isArray(result.line_items) ? result.line_items : [];
  const pages = Array.isArray(result.words) ? result.words : [];
  const adds = (result.flags || []).length === 0 ? " The totals add up." : "";
  const currency = result.currency ? ` Amounts in ${result.currency}.` : "";
  verdict.textContent = `Read ${found} of ${HEADER_FIELDS.length} fields and ${plural(items.length, "line item")} from ${plural(result.pages, "page")}.${currency}${adds}`;
  verdict.classList.remove("muted");
  showFlags(result);
  fieldTable.tBodies[0].replaceChildren(...fieldRows(result));
  itemTable.tBodies[0].replaceChildren(...itemRows(items));
  itemTable.tFoot.replaceChildren(...(items.length ? [itemTotal(items)] : []));
  itemsWrap.hidden = items.length === 0;
  noItems.hidden = items.length !== 0;
  legend.replaceChildren(...legendItems(pages));
  legend.hidden = legend.childElementCount === 0;
  pagesBox.replaceChildren(
    ...pages.map((words, index) => drawPage(words, index + 1, pages.length, aspectOf(invoice.pages[index]), items)),
  );
  extraction.hidden = false;
}

function clearExtraction(message) {
  verdict.textContent = message;
  verdict.classList.add("muted");
  for (const element of [flagList, fieldTable.tBodies[0], itemTable.tBodies[0], itemTable.tFoot, legend, pagesBox]) {
    element.replaceChildren();
  }
  flags.hidden = true;
  extraction.hidden = true;
}

/** Why `invoice` (parsed JSON) cannot be an invoice, or "" when it has the shape the server checks further. */
function notAnInvoice(invoice) {
  if (Array.isArray(invoice)) return "holds a list; paste one invoice, an object with a list of \"pages\"";
  if (invoice === null || typeof invoice !== "object") return "is not an invoice: an object with a list of \"pages\"";
  if (!Array.isArray(invoice.pages)) return "has no list of \"pages\"";
  return "";
}

function refuse(message) {
  latest++; // an answer still on its way is not shown over the error
  button.disabled = false;
  clearExtraction("Nothing extracted.");
  showError(errorBox, message);
  flagField(form, "invoice:");
}

async function extract() {
  showError(errorBox, "");
  flagField(form);
  const written = invoiceBox.value;
  const what = source || "The invoice";
  if (!written.trim()) {
    refuse("Paste an invoice's JSON first, drop its file, or pick a validation invoice.");
    return;
  }
  let invoice;
  try {
    invoice = JSON.parse(written);
  } catch (error) {
    refuse(`${what} is not valid JSON: ${oneLine(error.message)}`);
    return;
  }
  const wrong = notAnInvoice(invoice);
  if (wrong) {
    refuse(`${what} ${wrong}.`);
    return;
  }
  const request = ++latest;
  button.disabled = true;
  verdict.classList.add("muted");
  verdict.textContent = "Extracting…";
  try {
    const result = await postJson("/predict", invoice);
    if (request !== latest) return;
    showExtraction(invoice, result);
    revealResult();
  } catch (error) {
    if (request !== latest) return;
    clearExtraction("Nothing extracted.");
    showError(errorBox, source ? `${source}: ${oneLine(error.message)}` : oneLine(error.message));
    flagField(form, "invoice:");
  } finally {
    if (request === latest) button.disabled = false;
  }
}

/** The box's JSON for an invoice: one line for each page's words and one for its boxes. */
function invoiceJson(invoice) {
  const { pages, ...rest } = invoice;
  const head = Object.entries(rest).map(([key, value]) => `  ${JSON.stringify(key)}: ${JSON.stringify(value)},`);
  const body = pages.map(
    (page) => `    {${Object.entries(page).map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`).join(",\n     ")}}`,
  );
  return ["{", ...head, '  "pages": [', body.join(",\n"), "  ]", "}"].join("\n");
}

function exampleButtons(invoices) {
  return invoices.map((invoice) => {
    const choice = document.createElement("button");
    choice.type = "button";
    choice.className = "text-example";
    const count = Array.isArray(invoice.pages) ? invoice.pages.length : 0;
    choice.textContent = `${invoice.name || "Invoice"} \u00b7 ${plural(count, "page")}`;
    choice.dataset.name = invoice.name || "";
    choice.dataset.pages = String(count);
    choice.addEventListener("click", () => {
      invoiceBox.value = invoiceJson(invoice);
      invoiceBox.scrollTop = 0;
      source = invoice.name || "";
      extract();
    });
    return choice;
  });
}

async function openFile(file) {
  showError(errorBox, "");
  const tooLarge = uploadTooLarge(file);
  if (tooLarge) {
    showError(errorBox, tooLarge);
    return;
  }
  try {
    invoiceBox.value = await file.text();
  } catch (error) {
    showError(errorBox, `${file.name} could not be read: ${oneLine(error.message)}`);
    return;
  }
  invoiceBox.scrollTop = 0;
  source = file.name || "The file";
  extract();
}

invoiceBox.addEventListener("input", () => {
  source = ""; // edited: no longer the file or example it came from
});
acceptFiles(fileInput, dropZone, openFile, () => showError(errorBox, "Nothing to read: drop an invoice's .json file."));
submitOnCtrlEnter(form, invoiceBox, extract);
showServedModel(document.getElementById("served-model"));
showExamples(examples, exampleButtons);
