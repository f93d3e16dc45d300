// The pre-training playground: choose, drop or pick an example image; POST /predict hides a share
// of its patches, restores them, and the linear probe ranks its labels.

import {
  acceptFiles,
  flagField,
  imageExampleButtons,
  percent,
  renderBars,
  request,
  revealResult,
  showError,
  showExamples,
  showServedModel,
  uploadTooLarge,
} from "./common.js";

const form = document.getElementById("upload-form");
const fileInput = document.getElementById("file");
const dropZone = document.getElementById("drop-zone");
const preview = document.getElementById("preview");
const hiddenShare = document.getElementById("hidden-share");
const hiddenShareValue = document.getElementById("hidden-share-value");
const anotherDraw = document.getElementById("another-draw");
const errorBox = document.getElementById("error");
const verdict = document.getElementById("verdict");
const restoration = document.getElementById("restoration");
const panels = {
  image_png: document.getElementById("seen"),
  masked_png: document.getElementById("masked"),
  reconstruction_png: document.getElementById("restored"),
};
const stats = document.getElementById("restoration-stats");
const probe = document.getElementById("probe"); // the probe's heading, bars and hint
const bars = document.getElementById("bars");

let current = null; // the image last restored: a new share or draw restores it again
let seed = 0; // which patches are hidden; "Another draw" counts up
let latest = 0; // only the newest request's answer is shown

function clear(message) {
  verdict.textContent = message;
  verdict.classList.add("muted");
  restoration.hidden = true;
  bars.replaceChildren();
}

function show(result) {
  for (const [name, image] of Object.entries(panels)) image.src = `data:image/png;base64,${result[name]}`;
  const side = `${result.patch_size} x ${result.patch_size} pixels`;
  stats.textContent =
    `${result.hidden_patches} of ${result.patches} patches hidden (${side} each, the image seen at ` +
    `${result.image_size} x ${result.image_size}); mean squared error on them: ${result.reconstruction_error.toFixed(4)}.`;
  if (result.top) {
    const strong = document.createElement("strong");
    strong.textContent = result.label;
    verdict.replaceChildren("The probe sees: ", strong, ` (${percent(result.top[0].probability)})`);
    renderBars(bars, result.top);
  } else {
    verdict.textContent = "Restored. The run has no labels, so there is no probe to name what it sees.";
  }
  probe.hidden = !result.top; // the wrapper, not the list: .bars sets display: grid over [hidden]
  verdict.classList.remove("muted");
  restoration.hidden = false;
}

/** Hide `hiddenShare` of `file`'s patches in draw `seed`, restore them and show the result. */
async function restore(file) {
  showError(errorBox, "");
  flagField(form);
  const ticket = ++latest;
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  clear("Restoring…");
  const upload = new FormData();
  upload.append("file", file, file.name || "image");
  const query = new URLSearchParams({ mask_ratio: String(Number(hiddenShare.value) / 100), seed: String(seed) });
  try {
    const result = await (await request(`/predict?${query}`, { method: "POST", body: upload })).json();
    if (ticket !== latest) return;
    show(result);
    revealResult();
  } catch (error) {
    if (ticket !== latest) return;
    preview.hidden = true;
    clear("Nothing restored.");
    showError(errorBox, `${file.name || "The image"}: ${error.message}`);
    flagField(form, error.message);
    if (error.status === 413 || error.status === 415) {
      // The file is what is wrong: forget it, so that the share and the draw do not send it again.
      current = null;
      anotherDraw.disabled = true;
    }
  }
}

/** A file chosen, dropped or picked: restored with the first draw, unless it is over the upload
 * limit (refused before sending it: what is shown stays, and the share and the draw keep to it). */
function pick(file) {
  const tooLarge = uploadTooLarge(file);
  if (tooLarge) {
    showError(errorBox, tooLarge);
    return;
  }
  current = file;
  seed = 0;
  anotherDraw.disabled = false;
  restore(file);
}

acceptFiles(fileInput, dropZone, pick, () => showError(errorBox, "Nothing to restore was dropped: drop an image file."));
hiddenShare.addEventListener("input", () => {
  hiddenShareValue.textContent = `${hiddenShare.value}%`;
  hiddenShare.setAttribute("aria-valuetext", `${hiddenShare.value}%`);
});
hiddenShare.addEventListener("change", () => {
  if (current) restore(current);
});
anotherDraw.addEventListener("click", () => {
  seed += 1;
  if (current) restore(current);
});

showServedModel(document.getElementById("served-model"));
showExamples(document.getElementById("examples"), (images) => imageExampleButtons(images, pick));
