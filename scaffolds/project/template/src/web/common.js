// What every page shares: calling the API, showing its errors, the header's model line, label bars,
// and the image playgrounds' file picking (input, drop zone, validation images), their upload of
// one image to /predict and their class legends.

/** An error the page shows as it is: the server's one-line `detail`, or what went wrong in the browser. */
export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

/** The response of `fetch(path, options)` when it is a 2xx; otherwise an ApiError with the server's reason. */
export async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("The server did not answer. Is `python src/runner.py serve` still running?");
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (typeof body.detail === "string") detail = body.detail;
      else if (Array.isArray(body.detail) && body.detail[0]?.msg) detail = body.detail[0].msg;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(detail, response.status);
  }
  return response;
}

/** The JSON body of a successful request. */
export async function api(path, options = {}) {
  return (await request(path, options)).json();
}

/** POST a JSON body and return the JSON answer. */
export function postJson(path, body, options = {}) {
  return api(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    ...options,
  });
}

/** Show `message` in the page's alert box (role="alert", so screen readers announce it), or hide it. */
export function showError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

/**
 * Mark the form field a server message names ("temperature: Input should be ..." names the field
 * called temperature) as invalid and move the focus there; clear the marks of the other fields.
 */
export function flagField(form, message = "") {
  const name = message.split(":")[0].split(".").at(-1).trim();
  for (const field of form.elements) field.removeAttribute("aria-invalid");
  const field = name && form.elements.namedItem(name);
  if (field instanceof HTMLElement) {
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-errormessage", "error");
    field.focus();
  }
}

/** Fill the header's status line with the served run and its step, from /health; return that (null on failure). */
export async function showServedModel(element) {
  try {
    const health = await api("/health");
    element.textContent = `${health.task} · run ${health.run} · step ${health.step}`;
    return health;
  } catch (error) {
    element.textContent = error.message;
    return null;
  }
}

/** Render ranked labels [{label, probability}] as a list of bars with their percentages. */
export function renderBars(list, ranked) {
  list.replaceChildren(
    ...ranked.map(({ label, probability }) => {
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.className = "label";
      name.textContent = label;
      const track = document.createElement("span");
      track.className = "track";
      track.setAttribute("aria-hidden", "true");
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.width = `${(probability * 100).toFixed(1)}%`;
      fill.style.display = "block";
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = percent(probability);
      item.dataset.label = label;
      item.dataset.probability = String(probability);
      item.append(name, track, value);
      return item;
    }),
  );
}

export function percent(probability) {
  return `${(probability * 100).toFixed(1)}%`;
}

/** Show the label the model chose and its probability. */
export function renderVerdict(element, result) {
  const top = result.top[0];
  const strong = document.createElement("strong");
  strong.textContent = result.label;
  element.replaceChildren("Predicted label: ", strong, ` (${percent(top.probability)})`);
}

/** Scroll the result into view when it is off screen (below the form, on a phone). */
export function revealResult() {
  document.getElementById("result").scrollIntoView({ block: "nearest" });
}

/** Buttons that each show one example text (truncated by the stylesheet) and call `pick` with it. */
export function textExampleButtons(texts, pick) {
  return texts.map((example) => {
    const choice = document.createElement("button");
    choice.type = "button";
    choice.className = "text-example";
    choice.textContent = example;
    choice.title = example;
    choice.addEventListener("click", () => pick(example));
    return choice;
  });
}

/**
 * Fill `container` with buttons for the server's validation examples (GET /api/examples), made
 * by `buttons(examples)`; when there are none, say why in it instead.
 */
export async function showExamples(container, buttons) {
  try {
    const { examples } = await api("/api/examples");
    container.replaceChildren(...buttons(examples));
  } catch (error) {
    container.textContent = `No examples: ${error.message}`;
  }
}

/** Submitting `form`, or Ctrl+Enter (Cmd+Enter) in its text `field`, calls `submit`. */
export function submitOnCtrlEnter(form, field, submit) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit();
    }
  });
}

/** The server's limit on an upload (it answers 413 above it): the image pages refuse larger files first. */
export const MAX_UPLOAD_BYTES = 10 * 2 ** 20;

/** Why `file` is too large to upload, or "" when it is not. */
export function uploadTooLarge(file) {
  if (file.size <= MAX_UPLOAD_BYTES) return "";
  return `${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; the limit is ${MAX_UPLOAD_BYTES / 2 ** 20} MB.`;
}

/**
 * Send each file chosen in `input`, or dropped on `zone`, to `pick`. The zone is the input's label,
 * so a click, Enter or Space opens the file dialog too; it is marked while a file is dragged over
 * it. A drop that holds no file calls `nothingDropped` instead.
 */
export function acceptFiles(input, zone, pick, nothingDropped) {
  input.addEventListener("change", () => {
    const file = input.files[0];
    input.value = ""; // else choosing the same file again (once fixed, say) would not fire `change`
    if (file) pick(file);
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) pick(file);
    else nothingDropped();
  });
}

/**
 * Buttons that each show one validation image (a data: URL from /api/examples) and call `pick`
 * with it as a PNG file, as if it had been chosen from the disk.
 */
export function imageExampleButtons(urls, pick, noun = "Validation image") {
  return urls.map((url, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "image-example";
    const image = document.createElement("img");
    image.src = url;
    image.alt = `${noun} ${index + 1}`;
    button.append(image);
    button.addEventListener("click", () => pick(pngFile(url, `example-${index + 1}.png`)));
    return button;
  });
}

/** A PNG file from a data: URL (decoded here: the pages may only fetch from their own server). */
export function pngFile(dataUrl, name) {
  const bytes = Uint8Array.from(atob(dataUrl.split(",")[1]), (char) => char.charCodeAt(0));
  return new File([bytes], name, { type: "image/png" });
}

/** Whether `element` (an <img> whose src was just set) can be drawn. */
export function decodes(element) {
  return element.decode().then(
    () => true,
    () => false,
  );
}

/** A positive whole number from the server, or null. */
export function positiveInteger(value) {
  const number = Number(value);
  return Number.isInteger(number) && number > 0 ? number : null;
}

/** A table cell naming a class: its colour swatch (not a colour: the style is dropped), its name. */
export function classCell(label, colour) {
  const cell = document.createElement("td");
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  swatch.setAttribute("aria-hidden", "true");
  swatch.style.backgroundColor = colour;
  const text = document.createElement("span");
  text.className = "class-name";
  text.textContent = label;
  cell.append(swatch, text);
  return cell;
}

/**
 * The upload of an image page that shows one image's result. The function it returns refuses a
 * file over the limit before sending it (what is shown stays), else previews the file at once,
 * clears the result with the `busy` message, posts the file to /predict and hands the answer to
 * `show(result, imageUrl, isLatest)`; a failure clears the result with the `failed` message and
 * shows the server's one-line reason. Only the latest upload's answer is shown: `isLatest()` says
 * whether a newer upload has started since (an older answer arriving late is dropped).
 */
export function imageUpload({ preview, errorBox, clear, show, busy, failed }) {
  let latest = 0;
  let imageUrl = ""; // the object URL of the image shown, freed when the next one replaces it
  return async (file) => {
    showError(errorBox, "");
    const tooLarge = uploadTooLarge(file);
    if (tooLarge) {
      showError(errorBox, tooLarge);
      return;
    }
    const ticket = ++latest;
    const isLatest = () => ticket === latest;
    if (imageUrl) URL.revokeObjectURL(imageUrl);
    imageUrl = URL.createObjectURL(file);
    preview.src = imageUrl;
    preview.hidden = false;
    clear(busy);
    const upload = new FormData();
    upload.append("file", file, file.name || "image");
    try {
      const result = await (await request("/predict", { method: "POST", body: upload })).json();
      if (!isLatest()) return;
      await show(result, imageUrl, isLatest);
      if (isLatest()) revealResult();
    } catch (error) {
      if (!isLatest()) return;
      preview.hidden = true;
      clear(failed);
      showError(errorBox, `${file.name || "The image"}: ${error.message}`);
    }
  };
}
