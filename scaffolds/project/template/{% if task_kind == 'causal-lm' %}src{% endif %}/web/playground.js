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
  promptEcho.textContent = prompt.value;
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
showServedModel(document.getElementById("served-model"));
showExamples(examples, (prompts) =>
  textExampleButtons(prompts, (example) => {
    prompt.value = example;
    prompt.focus();
  }),
);
