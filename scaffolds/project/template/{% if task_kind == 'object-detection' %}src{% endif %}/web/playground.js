// The detection playground: choose, drop or pick a validation frame; POST /predict finds the people
// and forklifts in it, and the page draws each box over the frame in its class's colour, labelled
// with its class and score, says how many of each it found, and lists the boxes in a table.
// What the server returns goes into the page as text (textContent), as a number or as a checked
// colour, never as HTML.

import {
  acceptFiles,
  classCell,
  decodes,
  imageExampleButtons,
  imageUpload,
  positiveInteger,
  showError,
  showExamples,
  showServedModel,
} from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
// The built-in classes' names for one and for several; another class is counted as "3 pallet".
const NAMES = { person: ["person", "people"], forklift: ["forklift", "forklifts"] };
const NEUTRAL = "#8c959f"; // a box whose colour is not #rrggbb is drawn in this grey

const fileInput = document.getElementById("file");
const dropZone = document.getElementById("drop-zone");
const preview = document.getElementById("preview");
const errorBox = document.getElementById("error");
const examples = document.getElementById("examples");
const verdict = document.getElementById("verdict");
const detection = document.getElementById("detection");
const overlay = document.getElementById("overlay");
const image = document.getElementById("overlay-image");
const boxes = document.getElementById("boxes");
const labels = document.getElementById("box-labels");
const threshold = document.getElementById("threshold");
const table = document.getElementById("box-table");
const rows = table.querySelector("tbody");

function clearResult(message) {
  detection.hidden = true;
  verdict.textContent = message;
  verdict.classList.add("muted");
  boxes.replaceChildren();
  labels.replaceChildren();
  rows.replaceChildren();
  threshold.textContent = "";
}

/** The server's colour when it is one (#rrggbb), else the neutral grey. */
function colourOf(value) {
  return typeof value === "string" && /^#[0-9a-f]{6}$/i.test(value) ? value : NEUTRAL;
}

/** Black or white, whichever reads better on `colour` (#rrggbb). */
function inkOn(colour) {
  const [red, green, blue] = [1, 3, 5].map((i) => {
    const channel = parseInt(colour.slice(i, i + 2), 16) / 255;
    return channel <= 0.04045 ? channel / 12.92 : ((channel + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue;
  return (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? "#000000" : "#ffffff";
}

/** The boxes of the answer that have a label, a score and four corners, best first. */
function boxesOf(result) {
  const found = Array.isArray(result.boxes) ? result.boxes : [];
  return found
    .filter(
      (entry) =>
        entry &&
        Number.isFinite(Number(entry.score)) &&
        Array.isArray(entry.box) &&
        entry.box.length === 4 &&
        entry.box.every((value) => Number.isFinite(Number(value))),
    )
    .map((entry) => ({
      label: String(entry.label),
      score: Number(entry.score),
      box: entry.box.map(Number),
      colour: colourOf(entry.colour),
    }));
}

/** "3 people", "1 forklift", "2 pallet" (a class the page has no plural for). */
function counted(count, label) {
  const names = Object.hasOwn(NAMES, label) ? NAMES[label] : null;
  return names ? `${count} ${names[count === 1 ? 0 : 1]}` : `${count} ${label}`;
}

/** The verdict: how many of each class were found, in the server's order of the classes. */
function summary(result, found) {
  let counts = result.counts;
  if (!counts || typeof counts !== "object" || Array.isArray(counts)) {
    counts = {};
    for (const { label } of found) counts[label] = (counts[label] ?? 0) + 1;
  }
  const parts = Object.entries(counts)
    .map(([label, count]) => [label, Number(count)])
    .filter(([, count]) => Number.isInteger(count) && count > 0)
    .map(([label, count]) => counted(count, label));
  if (!parts.length) return "Nothing found.";
  const listed = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)}`;
  return `Found ${listed}.`;
}

const detect = imageUpload({
  preview,
  errorBox,
  clear: clearResult,
  show: showResult,
  busy: "Looking for people and forklifts…",
  failed: "No boxes.",
});

async function showResult(result, imageUrl, isLatest) {
  const width = positiveInteger(result.width);
  const height = positiveInteger(result.height);
  if (!width || !height) throw new Error("the server's answer has no image size");
  image.src = imageUrl;
  const imageShown = await decodes(image);
  if (!isLatest()) return;
  // The box has the frame's proportions; the image and the drawing (in the frame's own pixels,
  // through its viewBox) both fill it, so each box lies over what it frames.
  overlay.style.setProperty("--ratio", String(width / height));
  image.hidden = !imageShown; // a format the server reads but the browser cannot draw (TIFF ...)
  preview.hidden = !imageShown;
  boxes.setAttribute("viewBox", `0 0 ${width} ${height}`);

  const found = boxesOf(result);
  // The worst first, so that the best box is drawn on top of the others.
  boxes.replaceChildren(...found.map((entry, index) => drawnBox(entry, index)).reverse());
  labels.replaceChildren(...found.map((entry, index) => boxLabel(entry, index, width, height)).reverse());
  rows.replaceChildren(...found.map(tableRow));
  table.hidden = !found.length;

  const limit = Number(result.threshold);
  const rule = Number.isFinite(limit) ? ` scoring at least ${limit}` : "";
  const many = found.length === 1 ? "One box" : `${found.length || "No"} boxes`;
  threshold.textContent = `${many}${rule}, in a ${width} × ${height} frame.`;
  if (!imageShown) threshold.textContent += " This browser cannot draw the image itself: the boxes are shown alone.";
  verdict.textContent = summary(result, found);
  verdict.classList.remove("muted");
  detection.hidden = false;
  placeTags(); // measured once shown
}

/** One box over the frame: a dark halo under its edge in its class's colour, so it shows on
 * light and dark scenes alike. Its coordinates are the frame's pixels (the viewBox's units). */
function drawnBox({ label, score, box, colour }, index) {
  const [x0, y0, x1, y1] = box;
  const group = document.createElementNS(SVG, "g");
  group.setAttribute("class", "box");
  group.dataset.index = String(index);
  group.dataset.label = label;
  group.dataset.score = String(score);
  for (const part of ["halo", "edge"]) {
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("class", part);
    rect.setAttribute("x", String(x0));
    rect.setAttribute("y", String(y0));
    rect.setAttribute("width", String(Math.max(x1 - x0, 0)));
    rect.setAttribute("height", String(Math.max(y1 - y0, 0)));
    if (part === "edge") rect.style.stroke = colour;
    group.append(rect);
  }
  return group;
}

/** The box's "person 0.92" tag, on its class's colour: above the box's top edge, inside it when
 * the box touches the top of the frame. placeTags puts it beside one of the box's corners. */
function boxLabel({ label, score, box, colour }, index, width, height) {
  const [x0, y0, x1] = box;
  const tag = document.createElement("span");
  tag.className = "box-label";
  tag.dataset.index = String(index);
  tag.dataset.from = String(x0 / width);
  tag.dataset.to = String(x1 / width);
  tag.textContent = `${label} ${score.toFixed(2)}`;
  tag.style.backgroundColor = colour;
  tag.style.color = inkOn(colour);
  tag.style.top = `${(y0 / height) * 100}%`;
  if (y0 / height < 0.08) tag.classList.add("inside");
  return tag;
}

/** Start each tag at its box's left edge, or end it at the box's right edge when it would stick
 * out of the frame on the right (and at the frame's left edge if it is wider than that). Run
 * again whenever the frame is shown at another width. */
function placeTags() {
  const shown = overlay.clientWidth;
  if (!shown) return;
  for (const tag of labels.children) {
    const from = Number(tag.dataset.from);
    const to = Number(tag.dataset.to);
    const wide = tag.offsetWidth;
    tag.style.left = "";
    tag.style.right = "";
    if (from * shown + wide <= shown) tag.style.left = `${from * 100}%`;
    else if (to * shown - wide >= 0) tag.style.right = `${(1 - to) * 100}%`;
    else tag.style.left = "0";
  }
}

/** One row of the table: the class (its colour swatch and name), the score and the corners. */
function tableRow({ label, score, box, colour }) {
  const [x0, y0, x1, y1] = box.map(Math.round);
  const row = document.createElement("tr");
  row.dataset.label = label;
  row.dataset.score = String(score);
  row.dataset.colour = colour;
  const name = classCell(label, colour);
  const cells = [score.toFixed(2), `${x0}, ${y0}`, `${x1}, ${y1}`].map((value) => {
    const cell = document.createElement("td");
    cell.className = "number";
    cell.textContent = value;
    return cell;
  });
  row.append(name, ...cells);
  return row;
}

acceptFiles(fileInput, dropZone, detect, () =>
  showError(errorBox, "Nothing to search was dropped: drop an image file."),
);

new ResizeObserver(placeTags).observe(overlay);
showServedModel(document.getElementById("served-model"));
showExamples(examples, (frames) => imageExampleButtons(frames, detect, "Validation frame"));
