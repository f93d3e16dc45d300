// The chart question answering playground: choose, drop or pick a validation chart, type a question
// about it, and Ask: POST /predict (multipart: the chart's bytes and the question) answers. The page
// shows the answer in large type with its probability, the question it answers, and every answer the
// model ranked with its probability. A validation chart comes with one of its questions and is asked
// it at once; a chart chosen while a question is typed is asked that question.
// What the server returns goes into the page as text (textContent) or as a number, never as HTML.

import {
  acceptFiles,
  api,
  flagField,
  percent,
  pngFile,
  renderBars,
  revealResult,
  showError,
  showExamples,
  showServedModel,
  uploadTooLarge,
} from "./common.js";

const form = document.getElementById("ask-form");
const fileInput = document.getElementById("file");
const dropZone = document.getElementById("drop-zone");
const preview = document.getElementById("preview");
const question = document.getElementById("question");
const button = document.getElementById("ask");
const errorBox = document.getElementById("error");
const examples = document.getElementById("examples");
const verdict = document.getElementById("verdict");
const answering = document.getElementById("answering");
const asked = document.getElementById("asked");
const probability = document.getElementById("probability");
const ranked = document.getElementById("ranked");

let chart = null; // the chart file Ask sends: chosen, dropped or a validation chart
let chartUrl = ""; // its object URL in the preview, freed when the next chart replaces it
let latest = 0; // the number of the latest request: an older answer arriving late is dropped

function clearResult(message) {
  answering.hidden = true;
  verdict.className = "verdict muted";
  verdict.textContent = message;
  asked.textContent = "";
  probability.textContent = "";
  ranked.replaceChildren();
}

/** Text that screen readers read and the eye does not see. */
function hiddenText(text) {
  const span = document.createElement("span");
  span.className = "visually-hidden";
  span.textContent = text;
  return span;
}

/** The answers of the server's reply that have an answer and a probability, its own first:
 * [{label, probability}] as the bars take them. */
function rankedAnswers(result) {
  const others = Array.isArray(result.alternatives) ? result.alternatives : [];
  return [result, ...others]
    .filter(
      (entry) => entry && typeof entry.answer === "string" && Number.isFinite(Number(entry.probability)),
    )
    .map((entry) => ({ label: entry.answer, probability: Number(entry.probability) }));
}

function showAnswer(result) {
  if (typeof result.answer !== "string") throw new Error("the server's reply has no answer");
  const answer = document.createElement("strong");
  answer.id = "answer";
  answer.className = "answer";
  answer.textContent = result.answer;
  verdict.className = "verdict";
  verdict.replaceChildren(hiddenText("Answer: "), answer);
  asked.textContent = typeof result.question === "string" ? `Question: ${result.question}` : "";
  const sure = Number(result.probability);
  probability.textContent = Number.isFinite(sure) ? `Probability ${percent(sure)}.` : "";
  renderBars(ranked, rankedAnswers(result));
  answering.hidden = false;
}

/** Show `file` as the chart to ask about (unless it is over the upload limit: what is shown stays).
 * Returns whether it was taken. */
function loadChart(file) {
  showError(errorBox, "");
  const tooLarge = uploadTooLarge(file);
  if (tooLarge) {
    showError(errorBox, tooLarge);
    return false;
  }
  chart = file;
  if (chartUrl) URL.revokeObjectURL(chartUrl);
  chartUrl = URL.createObjectURL(file);
  preview.src = chartUrl;
  preview.hidden = false;
  return true;
}

/** A chart chosen, dropped or picked: asked the question in the box, or, with none typed yet,
 * waiting for one (an answer about the chart before would no longer match the preview). */
function pickChart(file) {
  if (!loadChart(file)) return;
  if (question.value.trim()) {
    ask();
  } else {
    latest++; // an answer still on its way was for the chart before
    button.disabled = false;
    clearResult("Now ask a question about the chart.");
    question.focus();
  }
}

async function ask() {
  showError(errorBox, "");
  flagField(form);
  if (!chart) {
    showError(errorBox, "Choose a chart first: drop one here, choose a file or pick a validation chart.");
    return;
  }
  const file = chart;
  const request = ++latest;
  button.disabled = true;
  clearResult("Reading the chart…");
  const upload = new FormData();
  upload.append("file", file, file.name || "chart");
  // As typed, an empty question included: the server's 422 says what is wrong, in one line.
  upload.append("question", question.value);
  try {
    const result = await api("/predict", { method: "POST", body: upload });
    if (request !== latest) return;
    showAnswer(result);
    revealResult();
  } catch (error) {
    if (request !== latest) return;
    clearResult("No answer.");
    if (error.status === 413 || error.status === 415) {
      // The file is what is wrong: name it, and forget it.
      showError(errorBox, `${file.name || "The chart"}: ${error.message}`);
      chart = null;
      preview.hidden = true;
    } else {
      showError(errorBox, error.message);
      if (error.status === 422) flagField(form, "question"); // the only form field the page can get wrong
    }
  } finally {
    if (request === latest) button.disabled = false;
  }
}

/** Buttons that each show one validation chart with its question; a click asks it of the chart. */
function exampleButtons(list) {
  return list
    .filter((example) => example && typeof example.image === "string" && typeof example.question === "string")
    .map(({ image, question: text }, index) => {
      const choice = document.createElement("button");
      choice.type = "button";
      choice.className = "chart-example";
      const thumbnail = document.createElement("img");
      thumbnail.src = image;
      thumbnail.alt = `Validation chart ${index + 1}`;
      const words = document.createElement("span");
      words.textContent = text;
      choice.append(thumbnail, words);
      choice.addEventListener("click", () => {
        question.value = text;
        pickChart(pngFile(image, `example-${index + 1}.png`));
      });
      return choice;
    });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  ask();
});
acceptFiles(fileInput, dropZone, pickChart, () =>
  showError(errorBox, "Nothing to ask about was dropped: drop an image file."),
);

showServedModel(document.getElementById("served-model"));
showExamples(examples, exampleButtons);
