// The captioning playground: choose, drop or pick a validation photo; POST /predict writes a caption
// for it. The page shows the caption in large type and makes it the preview's alt text (what a
// caption is for), says how many words it has and its log-probability, offers to copy it, and lists
// the other captions beam search kept, likeliest first, with theirs.
// What the server returns goes into the page as text (textContent or an alt attribute) or as a
// number, never as HTML.

import {
  acceptFiles,
  imageExampleButtons,
  imageUpload,
  showError,
  showExamples,
  showServedModel,
} from "./common.js";

const fileInput = document.getElementById("file");
const dropZone = document.getElementById("drop-zone");
const preview = document.getElementById("preview");
const errorBox = document.getElementById("error");
const examples = document.getElementById("examples");
const verdict = document.getElementById("verdict");
const captioning = document.getElementById("captioning");
const words = document.getElementById("words");
const copyButton = document.getElementById("copy-caption");
const copyStatus = document.getElementById("copy-status");
const noAlternatives = document.getElementById("no-alternatives");
const table = document.getElementById("alternatives");
const rows = table.querySelector("tbody");

const PREVIEW_ALT = preview.alt; // "The photo being described": until the caption replaces it
let caption = ""; // the caption shown, for the copy button

function clearResult(message) {
  captioning.hidden = true;
  verdict.className = "verdict muted";
  verdict.textContent = message;
  preview.alt = PREVIEW_ALT;
  caption = "";
  words.textContent = "";
  copyStatus.textContent = "";
  rows.replaceChildren();
}

/** Text that screen readers read and the eye does not see. */
function hiddenText(text) {
  const span = document.createElement("span");
  span.className = "visually-hidden";
  span.textContent = text;
  return span;
}

/** The other captions of the answer that have a caption and a number for a log-probability, in
 * the server's order (likeliest first). */
function alternativesOf(result) {
  const listed = Array.isArray(result.alternatives) ? result.alternatives : [];
  return listed
    .filter(
      (entry) =>
        entry && typeof entry.caption === "string" && Number.isFinite(Number(entry.log_probability)),
    )
    .map((entry) => ({ caption: entry.caption, logProbability: Number(entry.log_probability) }));
}

/** "1 word", "7 words". */
function wordCount(count) {
  return `${count} ${count === 1 ? "word" : "words"}`;
}

/** A log-probability as text, with a true minus sign: "−4.21". */
function logProbability(value) {
  return value.toFixed(2).replace("-", "\u2212");
}

const describe = imageUpload({
  preview,
  errorBox,
  clear: clearResult,
  show: showResult,
  busy: "Describing the photo…",
  failed: "No caption.",
});

function showResult(result) {
  if (typeof result.caption !== "string") throw new Error("the server's answer has no caption");
  caption = result.caption.trim() ? result.caption : "";
  const count = Number.isInteger(result.words) ? result.words : caption.trim().split(/\s+/).length;
  if (caption) {
    const shown = document.createElement("strong");
    shown.id = "caption";
    shown.className = "caption-text";
    shown.textContent = caption;
    verdict.className = "verdict";
    verdict.replaceChildren(hiddenText("Caption: "), shown);
    preview.alt = caption; // the photo as a screen reader now reads it: what the caption is for
    // How sure the model is of the caption, on the scale the other captions' column uses.
    const likelihood = Number(result.log_probability);
    words.textContent = Number.isFinite(likelihood)
      ? `${wordCount(count)}, log-probability ${logProbability(likelihood)}.`
      : `${wordCount(count)}.`;
  } else {
    verdict.className = "verdict muted";
    verdict.textContent = "The model wrote no words for this photo.";
    words.textContent = "";
  }
  copyButton.hidden = !caption;

  const others = alternativesOf(result);
  rows.replaceChildren(...others.map(tableRow));
  table.hidden = !others.length;
  noAlternatives.hidden = Boolean(others.length);
  captioning.hidden = false;
}

/** One row of the table: the caption's rank (the caption shown is 1), its words and its
 * log-probability. */
function tableRow({ caption: text, logProbability: value }, index) {
  const row = document.createElement("tr");
  row.dataset.caption = text;
  row.dataset.logProbability = String(value);
  const rank = document.createElement("td");
  rank.className = "number";
  rank.textContent = String(index + 2);
  const said = document.createElement("td");
  said.className = "alternative-caption";
  said.textContent = text.trim() ? text : "(no words)";
  if (!text.trim()) said.classList.add("muted");
  const score = document.createElement("td");
  score.className = "number";
  score.textContent = logProbability(value);
  row.append(rank, said, score);
  return row;
}

/** Copy the caption to the clipboard; where the browser does not allow that (a page served over
 * plain HTTP to another machine), select it so that Ctrl+C copies it. */
async function copyCaption() {
  if (!caption) return;
  const shown = caption;
  try {
    await navigator.clipboard.writeText(shown);
    if (shown === caption) copyStatus.textContent = "Copied.";
  } catch {
    const text = document.getElementById("caption");
    if (!text || shown !== caption) return;
    const range = document.createRange();
    range.selectNodeContents(text);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    copyStatus.textContent = "The browser did not allow copying: the caption is selected, press Ctrl+C.";
  }
}

copyButton.addEventListener("click", copyCaption);
acceptFiles(fileInput, dropZone, describe, () =>
  showError(errorBox, "Nothing to describe was dropped: drop an image file."),
);

showServedModel(document.getElementById("served-model"));
showExamples(examples, (photos) => imageExampleButtons(photos, describe, "Validation photo"));
