// The training dashboard: the curves of a run's metrics.jsonl, followed while it trains, and the
// task spec's acceptance gates once it has finished.
//
// Every couple of seconds it asks /api/runs/NAME?offset=N for the records written since byte N,
// so a long run costs the same to follow as a short one. With "Latest run" chosen it switches to
// a new run as soon as one starts.

import { api, ApiError, showError, showServedModel } from "./common.js";
import { drawChart, formatNumber } from "./chart.js";

const POLL_TRAINING_MS = 1500;
const POLL_IDLE_MS = 5000;
// The metrics that choose a task's saved model (on the validation split), as people write them.
const MONITOR_NAMES = { accuracy: "accuracy", eval_loss: "eval loss", f1: "F1", map: "mAP", miou: "mIoU", cider: "CIDEr-D" };
// Record fields that are bookkeeping, not metrics to plot.
const NOT_METRICS = new Set(["kind", "step", "epoch", "time", "best", "examples", "tokens", "elapsed_s", "eval_loss"]);
const THROUGHPUT = { samples_per_s: "samples/s", tokens_per_s: "tokens/s" };

const select = document.getElementById("run-select");
const badge = document.getElementById("run-status");
const updated = document.getElementById("updated");
const errorBox = document.getElementById("error");
const summary = document.getElementById("summary");
const charts = document.getElementById("charts");
const gatesStatus = document.getElementById("gates-status");
const gatesBody = document.querySelector("#gates tbody");
const gateHints = document.getElementById("gate-hints");
const configBody = document.querySelector("#config tbody");

const pinned = new URLSearchParams(location.search).get("run") || "";
const state = { follow: !pinned, run: pinned, offset: 0, records: [], status: "", runs: [], checked: "" };

// --- Polling ---------------------------------------------------------------------------------

async function refresh() {
  try {
    await refreshRuns();
    if (state.run) await refreshRecords();
    showError(errorBox, "");
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    showError(errorBox, error.message);
  }
  const delay = ["training", "starting"].includes(state.status) ? POLL_TRAINING_MS : POLL_IDLE_MS;
  setTimeout(refresh, document.hidden ? POLL_IDLE_MS : delay);
}

async function refreshRuns() {
  const { runs } = await api("/api/runs");
  if (JSON.stringify(runs.map(optionText)) !== JSON.stringify(state.runs.map(optionText))) {
    state.runs = runs;
    fillRunSelect();
  }
  state.runs = runs;
  if (state.follow && runs.length && runs[0].name !== state.run) switchRun(runs[0].name);
  if (!runs.length) {
    gatesStatus.textContent = "No runs yet: train one with `python src/runner.py train`.";
  }
}

async function refreshRecords() {
  const run = state.run;
  const data = await api(`/api/runs/${encodeURIComponent(run)}?offset=${state.offset}`);
  if (run !== state.run) return; // the user switched runs meanwhile
  if (data.start !== state.offset) state.records = []; // the file was replaced: start over
  state.records = state.records.concat(data.records); // (push(...records) overflows on long runs)
  state.offset = data.offset;
  state.status = data.status;
  renderStatus(data);
  if (data.records.length || !charts.childElementCount) renderCharts();
  renderSummary(data.config, data.monitor);
  renderConfig(data.config);
  const finalRecord = state.records.findLast((r) => r.kind === "final");
  const checkKey = finalRecord ? `${run}@${finalRecord.time}` : "";
  if (checkKey && checkKey !== state.checked) {
    state.checked = checkKey;
    loadGates(run);
  } else if (!finalRecord) {
    state.checked = "";
    clearGates();
    gatesStatus.textContent = `The gates are judged when the run finishes (it is at step ${data.step}).`;
  }
}

function switchRun(name) {
  Object.assign(state, { run: name, offset: 0, records: [], status: "", checked: "" });
  select.value = state.follow ? "" : name;
  charts.replaceChildren();
  clearGates();
  gatesStatus.textContent = "";
}

select.addEventListener("change", () => {
  state.follow = select.value === "";
  const url = new URL(location.href);
  if (state.follow) url.searchParams.delete("run");
  else url.searchParams.set("run", select.value);
  history.replaceState(null, "", url);
  switchRun(select.value || state.runs[0]?.name || "");
  refreshRecords().catch((error) => showError(errorBox, error.message));
});

function optionText(run) {
  return `${run.name} · ${run.status}, step ${run.step}${run.served ? " · served" : ""}`;
}

function fillRunSelect() {
  const latest = new Option("Latest run (follows new runs)", "");
  select.replaceChildren(latest, ...state.runs.map((run) => new Option(optionText(run), run.name)));
  select.value = state.follow ? "" : state.run;
}

// --- Rendering -------------------------------------------------------------------------------

function renderStatus(data) {
  badge.textContent = data.status;
  badge.className = `badge ${data.status}`;
  document.title = `${data.name} (${data.status}) · ${document.title.split(" · ").at(-1)}`;
}

/** The charts to draw: loss, validation metrics, learning rate, throughput, gradient norm. */
function chartSpecs(records) {
  const train = records.filter((r) => r.kind === "train");
  const evals = records.filter((r) => r.kind === "eval");
  const points = (rows, key) => rows.filter((r) => key in r).map((r) => [r.step, r[key] ?? NaN]);
  const specs = [
    {
      key: "loss",
      title: "Loss",
      series: [
        { key: "loss", name: "training loss", points: points(train, "loss") },
        { key: "eval_loss", name: "validation loss", points: points(evals, "eval_loss"), markers: true },
      ],
    },
  ];
  const metricKeys = [...new Set(evals.flatMap((r) => Object.keys(r)))].filter(
    (key) => !NOT_METRICS.has(key) && evals.some((r) => typeof r[key] === "number"),
  );
  const bounded = metricKeys.filter((key) => evals.every((r) => !(key in r) || r[key] === null || (r[key] >= 0 && r[key] <= 1)));
  if (bounded.length) {
    const series = bounded.map((key) => ({ key, name: key.replaceAll("_", " "), points: points(evals, key), markers: true }));
    specs.push({ key: "eval", title: "Validation metrics", series });
  }
  for (const key of metricKeys.filter((k) => !bounded.includes(k))) {
    const name = key.replaceAll("_", " ");
    specs.push({ key, title: `Validation ${name}`, series: [{ key, name, points: points(evals, key), markers: true }] });
  }
  specs.push({ key: "lr", title: "Learning rate", series: [{ key: "lr", name: "learning rate", points: points(train, "lr") }] });
  for (const [key, unit] of Object.entries(THROUGHPUT)) {
    if (train.some((r) => key in r)) {
      specs.push({ key, title: `Throughput (${unit})`, series: [{ key, name: unit, points: points(train, key) }] });
    }
  }
  if (train.some((r) => "grad_norm" in r)) {
    const series = [{ key: "grad_norm", name: "gradient norm", points: points(train, "grad_norm") }];
    specs.push({ key: "grad_norm", title: "Gradient norm (before clipping)", series });
  }
  return specs;
}

function renderCharts() {
  for (const spec of chartSpecs(state.records)) {
    let figure = charts.querySelector(`figure[data-chart="${spec.key}"]`);
    if (!figure) {
      figure = document.createElement("figure");
      figure.className = "chart card";
      figure.dataset.chart = spec.key;
      const caption = document.createElement("figcaption");
      caption.textContent = spec.title;
      const plot = document.createElement("div");
      plot.className = "plot";
      const legend = document.createElement("ul");
      legend.className = "legend";
      legend.setAttribute("aria-label", `${spec.title}: latest values`);
      figure.append(caption, plot, legend);
      charts.append(figure);
    }
    figure.spec = spec;
    drawChart(figure, spec);
  }
}

// Charts are drawn at their width in pixels (text stays readable on a phone): redraw on resize.
new ResizeObserver(() => {
  for (const figure of charts.querySelectorAll("figure")) if (figure.spec) drawChart(figure, figure.spec);
}).observe(charts);

function renderSummary(config, monitor) {
  const records = state.records;
  const last = records.at(-1);
  const train = records.filter((r) => r.kind === "train");
  const evals = records.filter((r) => r.kind === "eval");
  const final = records.findLast((r) => r.kind === "final");
  const lastTrain = train.at(-1);
  const cards = [];
  if (last) {
    const planned = config.max_steps ? ` / ${config.max_steps}` : "";
    const epoch = records.findLast((r) => typeof r.epoch === "number")?.epoch ?? "–";
    cards.push(["Step", `${last.step}${planned}`], ["Epoch", epoch]);
  }
  if (lastTrain) cards.push(["Training loss", formatNumber(lastTrain.loss)]);
  // The model the run saved (model.pt: what `serve` and `check` use) is the one of the last
  // evaluation marked best on the metric the task monitors; the final record measures it whole.
  const chosen = evals.findLast((r) => r.best === true);
  const figure = final?.[monitor] ?? chosen?.[monitor];
  if (typeof monitor === "string" && typeof figure === "number") {
    const name = MONITOR_NAMES[monitor] ?? monitor.replaceAll("_", " ");
    cards.push([`Saved model (step ${chosen?.step ?? final.step})`, `${name} ${formatNumber(figure)}`]);
  }
  for (const [key, unit] of Object.entries(THROUGHPUT)) {
    if (lastTrain && key in lastTrain) cards.push([`Throughput (${unit})`, formatNumber(lastTrain[key])]);
  }
  if (lastTrain && "mfu" in lastTrain) cards.push(["MFU", `${(lastTrain.mfu * 100).toFixed(1)}%`]);
  const elapsed = records.findLast((r) => typeof r.elapsed_s === "number");
  if (elapsed) cards.push(["Training time", duration(elapsed.elapsed_s)]);
  if (final?.parameters) cards.push(["Parameters", final.parameters.toLocaleString("en-US")]);
  summary.replaceChildren(
    ...cards.map(([term, value]) => {
      const group = document.createElement("div");
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      group.append(dt, dd);
      return group;
    }),
  );
}

function duration(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function renderConfig(config) {
  configBody.replaceChildren(
    ...Object.entries(config).map(([name, value]) => row([name, JSON.stringify(value)])),
  );
}

async function loadGates(run) {
  gatesStatus.textContent = "Measuring the gates (latency is timed on the model)…";
  clearGates();
  try {
    const result = await api(`/api/check?run=${encodeURIComponent(run)}`);
    if (run !== state.run) return;
    gatesBody.replaceChildren(...result.gates.map(gateRow));
    gateHints.replaceChildren(...result.gates.filter((gate) => gate.hint).map(hintItem));
    const failed = result.gates.filter((gate) => gate.status === "fail").length;
    gatesStatus.textContent = !result.gates.length
      ? `${result.spec} has no machine-checkable thresholds: nothing to check.`
      : failed
        ? `${failed} of ${result.gates.length} gates failed.`
        : "All measured gates pass.";
  } catch (error) {
    if (run !== state.run) return;
    gatesStatus.textContent = error instanceof ApiError ? error.message : `The gates could not be measured: ${error.message}`;
  }
}

function clearGates() {
  gatesBody.replaceChildren();
  gateHints.replaceChildren();
}

/** What to try for a failed gate on an anti-pattern, as `runner.py check` prints it. */
function hintItem(gate) {
  const item = document.createElement("li");
  const metric = document.createElement("strong");
  metric.textContent = gate.metric;
  item.append(metric, `: ${gate.hint}`);
  item.dataset.metric = gate.metric;
  return item;
}

const GATE_KINDS = { constraints: "constraint", rewards: "reward", penalties: "penalty" };
const GATE_COLUMNS = ["gate", "metric", "must be", "measured", "result", "the spec says"];

/** One row as `runner.py check` prints it; a penalty's condition is what must not hold. */
function gateRow(gate) {
  // The numbers as the server words them (times in s or min), the same as `runner.py check`.
  const target = `${gate.section === "penalties" ? "not " : ""}${gate.op} ${gate.target_text}`;
  const measured = gate.observed_text ?? "–"; // null: a metric this project does not measure
  const tr = row([GATE_KINDS[gate.section] ?? gate.section, gate.metric, target, measured, gate.status, gate.text]);
  GATE_COLUMNS.forEach((label, index) => {
    tr.cells[index].dataset.label = label; // shown beside each value on a phone
  });
  tr.dataset.metric = gate.metric;
  tr.dataset.status = gate.status;
  tr.cells[3].className = "number";
  tr.cells[4].className = `result ${gate.status.replace(" ", "-")}`;
  return tr;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = String(text);
    tr.append(td);
  }
  return tr;
}

showServedModel(document.getElementById("served-model"));
refresh();
