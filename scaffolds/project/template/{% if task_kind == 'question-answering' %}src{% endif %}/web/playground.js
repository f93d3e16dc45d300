// The question-answering playground: ask a question of the product manuals, or of a passage of your
// own; POST /predict finds the manual section to read (BM25), reads it and quotes the answer from
// it, or abstains. The page shows the answer, the passage read with the answer marked in it, and the
// sections retrieval found. Everything the server returns goes into the page as text (textContent,
// text nodes), never as HTML.

import { flagField, postJson, revealResult, showError, showExamples, showServedModel, submitOnCtrlEnter, textExampleButtons } from "./common.js";

const form = document.getElementById("question-form");
const question = document.getElementById("question");
const context = document.getElementById("context");
const passageDetails = document.getElementById("passage-details");
const button = document.getElementById("ask");
const errorBox = document.getElementById("error");
const verdict = document.getElementById("verdict");
const margin = document.getElementById("margin");
const reading = document.getElementById("reading");
const passageTitle = document.getElementById("passage-title");
const passage = document.getElementById("passage");
const retrieval = document.getElementById("retrieval");
const retrieved = document.getElementById("retrieved");
const examples = document.getElementById("examples");
let latest = 0; // the number of the latest request: an older answer arriving late is dropped

function hiddenText(words) {
  const span = document.createElement("span");
  span.className = "visually-hidden";
  span.textContent = words;
  return span;
}

/**
 * The passage as text nodes, with a <mark> around the answer. The server's offsets count Unicode
 * characters (code points, as Python does) where JavaScript strings count UTF-16 units, so the
 * passage is sliced as an array of code points: an emoji before the answer does not shift it.
 * Offsets that do not fit the passage (never from this server) mark nothing.
 */
function markedPassage(text, start, end) {
  const characters = Array.from(text);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end <= start || end > characters.length) {
    return [document.createTextNode(text)];
  }
  const mark = document.createElement("mark");
  mark.className = "answer-span";
  mark.dataset.start = String(start);
  mark.dataset.end = String(end);
  mark.textContent = characters.slice(start, end).join("");
  // Read aloud as "[answer] 2 years [end of answer]"; seen as the marked words.
  return [
    document.createTextNode(characters.slice(0, start).join("")),
    hiddenText("[answer] "),
    mark,
    hiddenText(" [end of answer]"),
    document.createTextNode(characters.slice(end).join("")),
  ];
}

/** How far the best span's score is above (answered) or below (abstained) the no-answer score. */
function marginText(result) {
  if (typeof result.margin !== "number") return "";
  const by = Math.abs(result.margin).toFixed(2);
  if (!result.abstained) return `The answer's score beats the no-answer score by ${by}.`;
  if (result.margin === 0) return "The best span's score only ties the no-answer score.";
  return `The no-answer score beats the best span's score by ${by}.`;
}

function retrievedItems(passages) {
  return passages.map(({ title, score }, index) => {
    const item = document.createElement("li");
    item.dataset.title = title;
    item.dataset.score = String(score);
    const name = document.createElement("span");
    name.className = "retrieved-title";
    name.textContent = title || "Untitled passage";
    const figures = document.createElement("span");
    figures.className = "retrieved-score";
    figures.textContent = `BM25 ${Number(score).toFixed(2)}${index === 0 ? " · read" : ""}`;
    item.append(name, figures);
    return item;
  });
}

function showAnswer(result, given) {
  // Retrieval found no section at all: the reply names none and read nothing.
  const nothingRead = !given && Array.isArray(result.retrieved) && result.retrieved.length === 0;
  if (result.abstained) {
    verdict.className = "verdict abstained";
    if (given) verdict.textContent = "No answer in the passage.";
    else if (nothingRead) verdict.textContent = "No answer in the manual: no section shares a word with the question.";
    else verdict.textContent = "No answer in the manual.";
  } else {
    verdict.className = "verdict";
    const answer = document.createElement("strong");
    answer.id = "answer";
    answer.className = "answer";
    answer.textContent = result.answer;
    verdict.replaceChildren(hiddenText("Answer: "), answer);
  }
  margin.textContent = marginText(result);
  margin.hidden = !margin.textContent;

  if (!nothingRead && typeof result.context === "string") {
    passageTitle.textContent = result.title || (given ? "your passage" : "an untitled passage");
    passage.replaceChildren(...markedPassage(result.context, result.start, result.end));
    reading.hidden = false;
    const mark = passage.querySelector("mark");
    // A long passage scrolls in its box: bring the answer into its view.
    passage.scrollTop = mark ? Math.max(0, mark.offsetTop - passage.clientHeight / 3) : 0;
  } else {
    passageTitle.textContent = "";
    passage.replaceChildren();
    reading.hidden = true;
  }
  const found = Array.isArray(result.retrieved) ? result.retrieved : [];
  retrieved.replaceChildren(...retrievedItems(found));
  retrieval.hidden = found.length === 0;
}

function clearAnswer(message) {
  verdict.className = "verdict muted";
  verdict.textContent = message;
  margin.textContent = "";
  margin.hidden = true;
  for (const element of [passageTitle, passage, retrieved]) element.replaceChildren();
  reading.hidden = retrieval.hidden = true;
}

async function ask() {
  showError(errorBox, "");
  flagField(form);
  // An empty question goes to the server too: its 422 says what is wrong, in one line.
  const body = { question: question.value.trim() };
  const given = context.value.trim() !== ""; // an empty passage box: retrieval finds the passage
  if (given) body.context = context.value; // as typed: the answer's offsets point into the passage
  const request = ++latest;
  button.disabled = true;
  verdict.className = "verdict muted";
  verdict.textContent = "Looking for the answer…";
  try {
    const result = await postJson("/predict", body);
    if (request !== latest) return;
    showAnswer(result, given);
    revealResult();
  } catch (error) {
    if (request !== latest) return;
    clearAnswer("Nothing answered.");
    showError(errorBox, error.message);
    if (error.message.startsWith("context")) passageDetails.open = true; // to show the field it names
    flagField(form, error.message);
  } finally {
    if (request === latest) button.disabled = false;
  }
}

// The form listens for Ctrl+Enter: it reaches it from the question box and the passage box alike.
submitOnCtrlEnter(form, form, ask);
showServedModel(document.getElementById("served-model"));
showExamples(examples, (texts) =>
  textExampleButtons(texts, (example) => {
    question.value = example;
    context.value = ""; // the examples are questions on the manuals
    ask();
  }),
);
