// The generation playground: POST /api/generate streams the continuation as JSON lines,
// {"text": piece} as each piece is sampled and {"done": true, "characters": n, "seconds": s} at the end.

import { flagField, request, revealResult, showError, showExamples, showServedModel, submitOnCtrlEnter, textExampleButtons } from "./common.js";

const form = document.getElementById("generate-form");
const prompt = document.getElementById("prompt");
const generateButton = document.getElementById("generate");
const stopButton = document.getElementById("stop");
const errorBox = document.getElementById("error");
const output = document.getElementById("output");
const promptEcho = document.getElementById("prompt-echo");
const completion = document.getElementById("completion");
const stats = document.getElementById("generation-stats");
const examples = document.getElementById("examples");

let controller = null; // aborts the running generation (Stop)
let afterPrompt = ""; // between the prompt and the generation in the output: a new line before an answer

function settings() {
  const number = (id) => Number(document.getElementById(id).value);
  return {
    prompt: prompt.value,
    max_new_tokens: number("max-new-tokens"),
    temperature: number("temperature"),
    top_k: number("top-k"),
  };
}

async function generate() {
  showError(errorBox, "");
  flagField(form);
  controller = new AbortController();
  generateButton.disabled = true;
  stopButton.disabled = false;
  output.setAttribute("aria-busy", "true");
  promptEcho.textContent = prompt.value + afterPrompt;
  completion.textContent = "";
  stats.textContent = "Generating…";
  revealResult();
  let finished = false;
  try {
    const response = await request("/api/generate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(settings()),
      signal: controller.signal,
    });
    for await (const message of jsonLines(response.body)) {
      if (message.done) {
        finished = true;
        stats.textContent = `${message.characters} characters in ${message.seconds.toFixed(2)} s.`;
      } else {
        completion.textContent += message.text;
      }
    }
    if (!finished) {
      throw new Error(`The generation broke off after ${completion.textContent.length} characters: see the server's log.`);
    }
  } catch (error) {
    if (error.name === "AbortError") stats.textContent = `Stopped after ${completion.textContent.length} characters.`;
    else {
      stats.textContent = "Nothing generated.";
      showError(errorBox, error.message);
      flagField(form, error.message);
    }
  } finally {
    output.setAttribute("aria-busy", "false");
    generateButton.disabled = false;
    stopButton.disabled = true;
  }
}

/**
 * A run tuned on instructions answers one in its chat template and stops at the end of the answer:
 * the page asks for an instruction. The validation examples are instructions too.
 */
function askForInstructions() {
  document.getElementById("page-title").textContent = "Ask the model";
  document.getElementById("page-lead").textContent =
    "Write an instruction: the served model answers it, token by token, and stops at the end of its answer.";
  for (const id of ["input-heading", "prompt-label"]) document.getElementById(id).textContent = "Instruction";
  document.getElementById("examples-heading").textContent = "Or try a validation instruction";
  document.getElementById("result-heading").textContent = "Answer";
  afterPrompt = "\n";
  if (prompt.value === prompt.defaultValue) prompt.value = "List the parameters of def resize(image, width, height=None)";
}

/** Start from the run's own temperature, as `runner.py predict` does (0, the likeliest tokens, for
 * a run tuned on instructions), unless the field was changed before the server answered. */
function useServedTemperature(served) {
  const temperature = document.getElementById("temperature");
  if (temperature.value === temperature.defaultValue) temperature.value = String(served);
}

/** The JSON objects of a streamed body, one per line, as they arrive. */
async function* jsonLines(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    const lines = buffered.split("\n");
    buffered = lines.pop();
    for (const line of lines) if (line.trim()) yield JSON.parse(line);
  }
  if (buffered.trim()) yield JSON.parse(buffered);
}

submitOnCtrlEnter(form, prompt, () => {
  if (!generateButton.disabled) generate(); // one generation at a time
});
stopButton.addEventListener("click", () => controller?.abort());
showServedModel(document.getElementById("served-model")).then((health) => {
  if (!health) return;
  useServedTemperature(health.temperature);
  if (health.chat) askForInstructions();
});
showExamples(examples, (prompts) =>
  textExampleButtons(prompts, (example) => {
    prompt.value = example;
    prompt.focus();
  }),
);
