// The image playground: choose, drop or pick an example image; POST /predict ranks its labels.

import {
  acceptFiles,
  flagField,
  imageExampleButtons,
  renderBars,
  renderVerdict,
  revealResult,
  request,
  showError,
  showExamples,
  showServedModel,
  uploadTooLarge,
} from "./common.js";

const fileInput = document.getElementById("file");
const dropZone = document.getElementById("drop-zone");
const topK = document.getElementById("top-k");
const preview = document.getElementById("preview");
const errorBox = document.getElementById("error");
const verdict = document.getElementById("verdict");
const bars = document.getElementById("bars");
const examples = document.getElementById("examples");
const form = document.getElementById("upload-form");

let current = null; // the image last classified, re-ranked when "Labels to show" changes

async function classify(file) {
  current = file;
  showError(errorBox, "");
  flagField(form);
  const tooLarge = uploadTooLarge(file);
  if (tooLarge) {
    showError(errorBox, tooLarge);
    return;
  }
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  verdict.textContent = "Classifying…";
  const upload = new FormData();
  upload.append("file", file, file.name || "image");
  try {
    const url = `/predict?top_k=${encodeURIComponent(topK.value)}`;
    const result = await (await request(url, { method: "POST", body: upload })).json();
    renderVerdict(verdict, result);
    verdict.classList.remove("muted");
    renderBars(bars, result.top);
    revealResult();
  } catch (error) {
    preview.hidden = true;
    verdict.textContent = "No prediction.";
    bars.replaceChildren();
    showError(errorBox, `${file.name || "The image"}: ${error.message}`);
    flagField(form, error.message);
  }
}

acceptFiles(fileInput, dropZone, classify, () =>
  showError(errorBox, "Nothing to classify was dropped: drop an image file."),
);
topK.addEventListener("change", () => {
  if (current) classify(current);
});

showServedModel(document.getElementById("served-model"));
showExamples(examples, (images) => imageExampleButtons(images, classify));
