// The text playground: type a text or pick an example; POST /predict gives each label's probability.

import { flagField, postJson, renderBars, renderVerdict, revealResult, showError, showExamples, showServedModel, submitOnCtrlEnter, textExampleButtons } from "./common.js";

const form = document.getElementById("text-form");
const text = document.getElementById("text");
const button = document.getElementById("classify");
const errorBox = document.getElementById("error");
const verdict = document.getElementById("verdict");
const bars = document.getElementById("bars");
const examples = document.getElementById("examples");

async function classify() {
  showError(errorBox, "");
  flagField(form);
  if (!text.value.trim()) {
    showError(errorBox, "Type or paste a text to classify first.");
    flagField(form, "text:");
    return;
  }
  button.disabled = true;
  verdict.textContent = "Classifying…";
  try {
    const result = await postJson("/predict", { text: text.value });
    renderVerdict(verdict, result);
    verdict.classList.remove("muted");
    renderBars(bars, result.top);
    revealResult();
  } catch (error) {
    verdict.textContent = "No prediction.";
    bars.replaceChildren();
    showError(errorBox, error.message);
    flagField(form, error.message);
  } finally {
    button.disabled = false;
  }
}

submitOnCtrlEnter(form, text, classify);
showServedModel(document.getElementById("served-model"));
showExamples(examples, (texts) =>
  textExampleButtons(texts, (example) => {
    text.value = example;
    classify();
  }),
);
