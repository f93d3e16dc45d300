// The text playground: type a text or pick an example; POST /predict gives each label's probability.

import { api, flagField, postJson, renderBars, renderVerdict, revealResult, showError, showServedModel, textExampleButtons } from "./common.js";

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

form.addEventListener("submit", (event) => {
  event.preventDefault();
  classify();
});
text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    classify();
  }
});

async function loadExamples() {
  try {
    const { examples: texts } = await api("/api/examples");
    examples.replaceChildren(
      ...textExampleButtons(texts, (example) => {
        text.value = example;
        classify();
      }),
    );
  } catch (error) {
    examples.textContent = `No examples: ${error.message}`;
  }
}

showServedModel(document.getElementById("served-model"));
loadExamples();
