// The fill-in playground: write a clause with [MASK] where a word goes, or pick an example; POST
// /predict gives each [MASK]'s likeliest tokens, and the probe the clause's kind. The page shows the
// text as written with each [MASK] replaced by its likeliest token (marked), each [MASK]'s ranked
// tokens, and the clause's kinds. Everything the model returns goes into the page as text
// (textContent, text nodes), never as HTML.

import { flagField, percent, postJson, renderBars, revealResult, showError, showExamples, showServedModel, submitOnCtrlEnter, textExampleButtons } from "./common.js";

const MASK = "[MASK]"; // what the server fills in, written exactly so (the model reads [mask] as words)

const form = document.getElementById("text-form");
const text = document.getElementById("text");
const insertMask = document.getElementById("insert-mask");
const topK = document.getElementById("top-k");
const button = document.getElementById("fill");
const errorBox = document.getElementById("error");
const verdict = document.getElementById("verdict");
const unfilled = document.getElementById("unfilled");
const filling = document.getElementById("filling");
const filled = document.getElementById("filled");
const candidates = document.getElementById("candidates"); // the heading, the lists and the hint
const maskLists = document.getElementById("mask-lists");
const probe = document.getElementById("probe"); // the heading, the kind, the bars and the hint
const clauseKind = document.getElementById("clause-kind");
const bars = document.getElementById("bars");
const noProbe = document.getElementById("no-probe");
const examples = document.getElementById("examples");
let latest = 0; // the number of the latest request: an older answer arriving late is dropped
// A filled-in text is shown, or the last fill-in failed on "Candidates to show": a new number
// fills the text in again.
let refillOnTopK = false;

function hiddenText(words) {
  const span = document.createElement("span");
  span.className = "visually-hidden";
  span.textContent = words;
  return span;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/**
 * The text as written, as text nodes, with each [MASK] the model filled in replaced by a <mark>
 * holding its likeliest token and the [MASK]'s number. The server fills the masks in the order
 * they come; those past the tokens the model reads stay [MASK] (marked as not filled). The server's
 * `filled` is the same text as one string: built here, each token can be marked.
 */
function markedText(written, masks) {
  const pieces = written.split(MASK);
  const parts = [document.createTextNode(pieces[0])];
  pieces.slice(1).forEach((after, index) => {
    const mask = masks[index];
    if (mask && mask.top.length) {
      const mark = document.createElement("mark");
      mark.className = "filled-token";
      mark.dataset.mask = String(index + 1);
      mark.title = `[MASK] ${index + 1} · ${percent(mask.top[0].probability)}`;
      const token = document.createElement("span");
      token.className = "filled-word";
      token.textContent = mask.top[0].token;
      const number = document.createElement("span");
      number.className = "mask-number";
      number.textContent = String(index + 1);
      // Read aloud as "england ([MASK] 1)"; seen as the token and a small number.
      mark.append(token, hiddenText(" ([MASK] "), number, hiddenText(")"));
      parts.push(mark);
    } else {
      const left = document.createElement("span");
      left.className = "unfilled-mask";
      left.textContent = MASK;
      parts.push(left);
    }
    parts.push(document.createTextNode(after));
  });
  return parts;
}

/** Per [MASK], a heading and its tokens as bars, likeliest first. */
function maskGroups(masks) {
  return masks.map((mask, index) => {
    const group = document.createElement("div");
    group.className = "mask-candidates";
    group.dataset.mask = String(index + 1);
    group.dataset.position = String(mask.position);
    const heading = document.createElement("h4");
    heading.className = "mask-heading";
    heading.id = `mask-${index + 1}-heading`;
    heading.textContent = `[MASK] ${index + 1}`;
    const list = document.createElement("ol");
    list.className = "bars";
    list.setAttribute("aria-labelledby", heading.id);
    list.setAttribute("aria-describedby", "candidates-hint");
    renderBars(list, mask.top.map(({ token, probability }) => ({ label: token, probability })));
    group.append(heading, list);
    return group;
  });
}

function showFilling(written, result) {
  const masks = Array.isArray(result.masks) ? result.masks : [];
  const left = Number.isInteger(result.unfilled) ? result.unfilled : 0;
  verdict.classList.remove("muted");
  if (masks.length) {
    verdict.textContent = `Filled in ${plural(masks.length, MASK)}.`;
  } else if (left) {
    verdict.textContent = `Nothing filled in: every ${MASK} is past the start of the text that the model reads.`;
  } else {
    verdict.textContent = `No ${MASK} in the text, so there is nothing to fill in: write ${MASK} where a word goes.`;
  }
  unfilled.textContent = left
    ? `${plural(left, MASK)} past the tokens the model reads ${left === 1 ? "was" : "were"} not filled in: put ${MASK} nearer the start.`
    : "";
  unfilled.hidden = !left;
  filling.hidden = false; // shown first: the box's scroll position needs its layout
  filled.replaceChildren(...markedText(written, masks));
  // A long text scrolls in its box: bring the first token filled in into its view.
  const first = filled.querySelector("mark");
  filled.scrollTop = first ? Math.max(0, first.offsetTop - filled.clientHeight / 3) : 0;
  maskLists.replaceChildren(...maskGroups(masks));
  candidates.hidden = masks.length === 0;
  const ranked = Array.isArray(result.top) && result.top.length ? result.top : null;
  if (ranked) {
    const kind = document.createElement("strong");
    kind.textContent = result.label;
    clauseKind.replaceChildren("Clause kind: ", kind, ` (${percent(ranked[0].probability)})`);
    renderBars(bars, ranked);
  } else {
    clauseKind.replaceChildren();
    bars.replaceChildren();
  }
  probe.hidden = !ranked; // the wrapper, not the list: .bars sets display: grid over [hidden]
  noProbe.hidden = Boolean(ranked);
}

function clearFilling(message) {
  verdict.textContent = message;
  verdict.classList.add("muted");
  unfilled.textContent = "";
  unfilled.hidden = true;
  for (const element of [filled, maskLists, clauseKind, bars]) element.replaceChildren();
  filling.hidden = true;
}

async function fill() {
  showError(errorBox, "");
  flagField(form);
  // An empty text, or one of spaces, goes to the server too: its 422 says what is wrong, in one line.
  const written = text.value; // the text shown filled in: the one sent, as it was then
  const request = ++latest;
  button.disabled = true;
  verdict.classList.add("muted");
  verdict.textContent = "Filling in…";
  try {
    const result = await postJson("/predict", { text: written, top_k: topK.value === "" ? null : Number(topK.value) });
    if (request !== latest) return;
    showFilling(written, result);
    refillOnTopK = true;
    revealResult();
  } catch (error) {
    if (request !== latest) return;
    clearFilling("Nothing filled in.");
    showError(errorBox, error.message);
    // A 422 names its field ("top_k: ..."), except the one for a text of spaces only.
    const named = /^\w+:/.test(error.message);
    flagField(form, error.status === 422 && !named ? "text:" : error.message);
    refillOnTopK = error.message.startsWith("top_k");
  } finally {
    if (request === latest) button.disabled = false;
  }
}

/** [MASK] in place of the selected text (a word selected), or at the cursor, and back to typing. */
insertMask.addEventListener("click", () => {
  text.setRangeText(MASK, text.selectionStart, text.selectionEnd, "end");
  text.focus();
});
topK.addEventListener("change", () => {
  if (refillOnTopK) fill();
});

submitOnCtrlEnter(form, text, fill);
showServedModel(document.getElementById("served-model"));
showExamples(examples, (texts) =>
  textExampleButtons(texts, (example) => {
    text.value = example;
    fill();
  }),
);
