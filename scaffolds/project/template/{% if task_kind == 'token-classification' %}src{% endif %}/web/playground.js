// The entity playground: type a note or pick an example; POST /predict finds its entities, and the
// page shows the note with each entity marked, a legend of the types found and a table of them.
// Everything the model returns goes into the page as text (textContent, text nodes), never as HTML.

import { flagField, percent, postJson, revealResult, showError, showExamples, showServedModel, submitOnCtrlEnter, textExampleButtons } from "./common.js";

const form = document.getElementById("text-form");
const text = document.getElementById("text");
const button = document.getElementById("tag");
const errorBox = document.getElementById("error");
const verdict = document.getElementById("verdict");
const legend = document.getElementById("legend");
const tagged = document.getElementById("tagged");
const table = document.getElementById("entities");
const examples = document.getElementById("examples");
let latest = 0; // the number of the latest request: an older answer arriving late is dropped

/**
 * The class that colours an entity type: DRUG -> ent-drug, "Body part" -> ent-body-part. The
 * stylesheet colours the built-in types; any other type (PER, ORG ... of your own data) gets a
 * neutral colour, and its name is always written beside it.
 */
function typeClass(type) {
  const slug = String(type).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return `ent-${slug || "other"}`;
}

/** A small label with the type's name, in the type's colour. */
function typeLabel(type) {
  const label = document.createElement("span");
  label.className = `entity-type ${typeClass(type)}`;
  label.textContent = type;
  return label;
}

function hiddenText(words) {
  const span = document.createElement("span");
  span.className = "visually-hidden";
  span.textContent = words;
  return span;
}

/**
 * The note as text nodes, with a <mark> around each entity. The server's offsets count Unicode
 * characters (code points, as Python does) where JavaScript strings count UTF-16 units, so the
 * note is sliced as an array of code points: an emoji before an entity does not shift it.
 */
function markedNote(note, entities) {
  const characters = Array.from(note);
  const parts = [];
  let at = 0;
  for (const entity of [...entities].sort((a, b) => a.start - b.start)) {
    const { start, end } = entity;
    // Overlapping or outside the note (never from this server): the table still lists it.
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < at || end <= start || end > characters.length) continue;
    if (start > at) parts.push(document.createTextNode(characters.slice(at, start).join("")));
    const mark = document.createElement("mark");
    mark.className = `entity ${typeClass(entity.type)}`;
    mark.dataset.type = entity.type;
    mark.dataset.start = String(start);
    mark.dataset.end = String(end);
    mark.title = `${entity.type} · ${percent(entity.score)}`;
    const words = document.createElement("span");
    words.className = "entity-text";
    words.textContent = characters.slice(start, end).join("");
    // Read aloud as "lisinopril (DRUG)"; seen as the words and a small label.
    mark.append(words, hiddenText(" ("), typeLabel(entity.type), hiddenText(")"));
    parts.push(mark);
    at = end;
  }
  if (at < characters.length) parts.push(document.createTextNode(characters.slice(at).join("")));
  return parts;
}

/** One legend item per type found, in the order they first appear, with how many there are. */
function legendItems(entities) {
  const counts = new Map();
  for (const { type } of entities) counts.set(type, (counts.get(type) || 0) + 1);
  return [...counts].map(([type, count]) => {
    const item = document.createElement("li");
    item.dataset.type = type;
    item.dataset.count = String(count);
    const number = document.createElement("span");
    number.className = "muted";
    number.textContent = ` × ${count}`;
    item.append(typeLabel(type), number);
    return item;
  });
}

function tableRows(entities) {
  return entities.map((entity) => {
    const row = document.createElement("tr");
    row.dataset.type = entity.type;
    const type = document.createElement("td");
    type.append(typeLabel(entity.type));
    const words = document.createElement("td");
    words.className = "entity-words";
    words.textContent = entity.text;
    const score = document.createElement("td");
    score.className = "number";
    score.textContent = percent(entity.score);
    row.append(type, words, score);
    return row;
  });
}

function showEntities(note, entities) {
  const count = entities.length;
  verdict.textContent = count === 0 ? "No entities found." : `${count} ${count === 1 ? "entity" : "entities"} found.`;
  verdict.classList.remove("muted");
  tagged.replaceChildren(...markedNote(note, entities));
  tagged.hidden = false;
  legend.replaceChildren(...legendItems(entities));
  legend.hidden = count === 0;
  table.tBodies[0].replaceChildren(...tableRows(entities));
  table.hidden = count === 0;
}

function clearEntities(message) {
  verdict.textContent = message;
  verdict.classList.add("muted");
  for (const element of [tagged, legend, table.tBodies[0]]) element.replaceChildren();
  tagged.hidden = legend.hidden = table.hidden = true;
}

async function tag() {
  showError(errorBox, "");
  flagField(form);
  if (!text.value.trim()) {
    showError(errorBox, "Type or paste a note to tag first.");
    flagField(form, "text:");
    return;
  }
  const note = text.value; // the answer's offsets point into this very string
  const request = ++latest;
  button.disabled = true;
  verdict.textContent = "Tagging…";
  try {
    const result = await postJson("/predict", { text: note });
    if (request !== latest) return;
    showEntities(note, result.entities);
    revealResult();
  } catch (error) {
    if (request !== latest) return;
    clearEntities("Nothing tagged.");
    showError(errorBox, error.message);
    flagField(form, error.message);
  } finally {
    if (request === latest) button.disabled = false;
  }
}

submitOnCtrlEnter(form, text, tag);
showServedModel(document.getElementById("served-model"));
showExamples(examples, (texts) =>
  textExampleButtons(texts, (example) => {
    text.value = example;
    tag();
  }),
);
