// The image playground: choose, drop or pick an example image; POST /predict ranks its labels.

import { api, flagField, renderBars, renderVerdict, revealResult, request, showError, showServedModel } from "./common.js";

const MAX_BYTES = 10 * 2 ** 20; // the server's limit too (it answers 413 above it)

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
  if (file.size > MAX_BYTES) {
    showError(errorBox, `${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; the limit is 10 MB.`);
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

fileInput.addEventListener("change", () => {
  if (fileInput.files.length) classify(fileInput.files[0]);
});
topK.addEventListener("change", () => {
  if (current) classify(current);
});

// Drag and drop onto the zone (which is also the file input's label, for mouse and keyboard).
for (const name of ["dragenter", "dragover"]) {
  dropZone.addEventListener(name, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const name of ["dragleave", "drop"]) {
  dropZone.addEventListener(name, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  const file = event.dataTransfer.files[0];
  if (file) classify(file);
  else showError(errorBox, "Nothing to classify was dropped: drop an image file.");
});

async function loadExamples() {
  try {
    const { examples: images } = await api("/api/examples");
    examples.replaceChildren(
      ...images.map((url, index) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "image-example";
        const image = document.createElement("img");
        image.src = url;
        image.alt = `Validation image ${index + 1}`;
        button.append(image);
        button.addEventListener("click", () => classify(pngFile(url, `example-${index + 1}.png`)));
        return button;
      }),
    );
  } catch (error) {
    examples.textContent = `No examples: ${error.message}`;
  }
}

/** A PNG file from a data: URL (decoded here: the pages may only fetch from their own server). */
function pngFile(dataUrl, name) {
  const bytes = Uint8Array.from(atob(dataUrl.split(",")[1]), (char) => char.charCodeAt(0));
  return new File([bytes], name, { type: "image/png" });
}

showServedModel(document.getElementById("served-model"));
loadExamples();
