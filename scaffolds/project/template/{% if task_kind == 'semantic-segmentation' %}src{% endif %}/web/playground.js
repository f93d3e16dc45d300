// The segmentation playground: choose, drop or pick a validation scene; POST /predict gives every
// pixel a class, and the page lays the mask over the image (its opacity set with a slider), with a
// table of the classes: each one's colour, name and share of the image.
// What the server returns goes into the page as text (textContent) or as a style or image source,
// never as HTML.

import {
  acceptFiles,
  classCell,
  decodes,
  imageExampleButtons,
  imageUpload,
  percent,
  positiveInteger,
  showError,
  showExamples,
  showServedModel,
} from "./common.js";

const fileInput = document.getElementById("file");
const dropZone = document.getElementById("drop-zone");
const preview = document.getElementById("preview");
const errorBox = document.getElementById("error");
const examples = document.getElementById("examples");
const verdict = document.getElementById("verdict");
const segmentation = document.getElementById("segmentation");
const overlay = document.getElementById("overlay");
const image = document.getElementById("overlay-image");
const mask = document.getElementById("overlay-mask");
const windows = document.getElementById("windows");
const opacity = document.getElementById("opacity");
const opacityValue = document.getElementById("opacity-value");
const legend = document.querySelector("#legend tbody");

function showOpacity() {
  const value = `${opacity.value}%`;
  mask.style.opacity = String(opacity.value / 100);
  opacityValue.textContent = value;
  opacity.setAttribute("aria-valuetext", value);
}

function clearResult(message) {
  segmentation.hidden = true;
  verdict.textContent = message;
  verdict.classList.add("muted");
  legend.replaceChildren();
  windows.textContent = "";
  mask.removeAttribute("src");
}

const segment = imageUpload({
  preview,
  errorBox,
  clear: clearResult,
  show: showResult,
  busy: "Labelling the pixels…",
  failed: "No mask.",
});

async function showResult(result, imageUrl, isLatest) {
  const width = positiveInteger(result.width);
  const height = positiveInteger(result.height);
  if (!width || !height) throw new Error("the server's answer has no image size");
  image.src = imageUrl;
  mask.src = `data:image/png;base64,${result.mask_png}`;
  const [imageShown, maskShown] = await Promise.all([decodes(image), decodes(mask)]);
  if (!isLatest()) return;
  if (!maskShown) throw new Error("the server's mask is not an image the browser can draw");
  // The box has the image's proportions; both images fill it, so each mask pixel covers its pixel.
  overlay.style.setProperty("--ratio", String(width / height));
  image.hidden = !imageShown; // a format the server reads but the browser cannot draw (TIFF ...)
  preview.hidden = !imageShown;
  showOpacity();

  const classes = Array.isArray(result.classes) ? result.classes : [];
  legend.replaceChildren(...classes.map(legendRow));
  const count = Number(result.windows);
  windows.textContent = count === 1 ? "Labelled in one window." : `Stitched together from ${count} windows.`;
  if (!imageShown) windows.textContent += " This browser cannot draw the image itself: the mask is shown alone.";

  const top = classes.reduce((best, entry) => (entry.fraction > (best?.fraction ?? -1) ? entry : best), null);
  if (top) {
    const strong = document.createElement("strong");
    strong.textContent = top.label;
    verdict.replaceChildren(`Labelled ${width} × ${height} pixels: mostly `, strong, ` (${percent(top.fraction)}).`);
  } else {
    verdict.textContent = `Labelled ${width} × ${height} pixels.`;
  }
  verdict.classList.remove("muted");
  segmentation.hidden = false;
}

/** One row of the legend: the class's colour swatch and name, and its share of the image. */
function legendRow({ label, colour, fraction }) {
  const row = document.createElement("tr");
  row.dataset.label = label;
  row.dataset.colour = colour;
  row.dataset.fraction = String(fraction);
  const name = classCell(label, colour);
  const share = document.createElement("td");
  share.className = "number";
  share.textContent = percent(fraction);
  row.append(name, share);
  return row;
}

acceptFiles(fileInput, dropZone, segment, () =>
  showError(errorBox, "Nothing to label was dropped: drop an image file."),
);
opacity.addEventListener("input", showOpacity);

showOpacity();
showServedModel(document.getElementById("served-model"));
showExamples(examples, (scenes) => imageExampleButtons(scenes, segment, "Validation scene"));
