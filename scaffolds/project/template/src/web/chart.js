// A small line chart drawn as inline SVG: x is the training step, one path per series.
// Every path carries data-series (the metric) and data-points (how many points it draws), and
// markers carry their step and value, so what is drawn can be checked against metrics.jsonl.

const SVG = "http://www.w3.org/2000/svg";
const MARGIN = { top: 10, right: 14, bottom: 34, left: 58 };
const MAX_MARKERS = 60; // beyond this, a series is drawn as a line only

/**
 * Draw `series` into `figure` (a <figure> holding an empty .plot element and a .legend list).
 * series: [{key, name, points: [[step, value], ...], markers: bool}]; null values break the line.
 */
export function drawChart(figure, { title, series, yTitle = "" }) {
  const plot = figure.querySelector(".plot");
  const width = Math.max(plot.clientWidth, 240);
  const height = 224;
  const drawn = series.filter((s) => s.points.length > 0);
  const finite = drawn.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));

  const svg = element("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": describe(title, drawn) });
  const titleNode = element("title");
  titleNode.textContent = describe(title, drawn);
  svg.append(titleNode);
  if (finite.length === 0) {
    const empty = element("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "axis-title" });
    empty.textContent = "no points yet";
    svg.append(empty);
    plot.replaceChildren(svg);
    figure.querySelector(".legend").replaceChildren();
    return;
  }

  const [xLow, xHigh] = extent(finite.map(([x]) => x));
  const [yLow, yHigh] = extent(finite.map(([, y]) => y));
  const xTicks = niceTicks(xLow, xHigh, Math.max(2, Math.floor(width / 90)));
  const yTicks = niceTicks(yLow, yHigh, 5);
  const [x0, x1] = [xTicks[0], xTicks.at(-1)];
  const [y0, y1] = [yTicks[0], yTicks.at(-1)];
  const innerWidth = width - MARGIN.left - MARGIN.right;
  const innerHeight = height - MARGIN.top - MARGIN.bottom;
  const sx = (x) => MARGIN.left + ((x - x0) / (x1 - x0)) * innerWidth;
  const sy = (y) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * innerHeight;

  const grid = element("g", { class: "grid" });
  const axis = element("g", { class: "axis" });
  for (const tick of yTicks) {
    grid.append(element("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: sy(tick), y2: sy(tick) }));
    axis.append(label(formatNumber(tick, yTicks), MARGIN.left - 6, sy(tick) + 4, "end"));
  }
  for (const tick of xTicks) {
    grid.append(element("line", { x1: sx(tick), x2: sx(tick), y1: MARGIN.top, y2: height - MARGIN.bottom }));
    axis.append(label(formatNumber(tick, xTicks), sx(tick), height - MARGIN.bottom + 16, "middle"));
  }
  const xTitle = label("step", MARGIN.left + innerWidth / 2, height - 4, "middle");
  xTitle.setAttribute("class", "axis-title");
  svg.append(grid, axis, xTitle);
  if (yTitle) {
    const yLabel = label(yTitle, 12, MARGIN.top + innerHeight / 2, "middle");
    yLabel.setAttribute("class", "axis-title");
    yLabel.setAttribute("transform", `rotate(-90 12 ${MARGIN.top + innerHeight / 2})`);
    svg.append(yLabel);
  }

  for (const s of drawn) {
    const colour = `s${series.indexOf(s) % 5}`;
    let d = "";
    let pen = "M";
    let count = 0;
    for (const [x, y] of thin(s.points, (x) => Math.floor(sx(x)))) {
      if (!Number.isFinite(y)) {
        pen = "M"; // a gap where the value is missing (a diverged loss is logged as NaN)
        continue;
      }
      d += `${pen}${round(sx(x))},${round(sy(y))}`;
      pen = "L";
      count += 1;
    }
    svg.append(element("path", { d, class: `series ${colour}`, "data-series": s.key, "data-points": count }));
    if (s.markers || count === 1) {
      const markers = element("g", { class: `markers ${colour}`, "data-series": s.key });
      for (const [x, y] of s.points.slice(-MAX_MARKERS)) {
        if (!Number.isFinite(y)) continue;
        const dot = element("circle", { cx: round(sx(x)), cy: round(sy(y)), r: 3.5, class: "marker", "data-step": x, "data-value": y });
        const tip = element("title");
        tip.textContent = `${s.name} at step ${x}: ${formatNumber(y)}`;
        dot.append(tip);
        markers.append(dot);
      }
      svg.append(markers);
    }
  }
  plot.replaceChildren(svg);

  const legend = figure.querySelector(".legend");
  legend.replaceChildren(
    ...drawn.map((s) => {
      const item = document.createElement("li");
      item.className = `s${series.indexOf(s) % 5}`;
      const text = document.createElement("span");
      const last = s.points.filter(([, y]) => Number.isFinite(y)).at(-1);
      text.textContent = last ? `${s.name} ${formatNumber(last[1])}` : s.name;
      item.append(text);
      return item;
    }),
  );
}

/**
 * The points worth drawing: when there are more than a few per pixel column, keep in each column
 * its first, lowest, highest and last point (and a gap, if it has one). The line looks the same,
 * and a run of a million steps draws about as fast as one of a thousand.
 */
export function thin(points, columnOf) {
  if (points.length <= 2000) return points;
  const kept = [];
  let start = 0;
  while (start < points.length) {
    const column = columnOf(points[start][0]);
    let end = start;
    while (end < points.length && columnOf(points[end][0]) === column) end += 1;
    const chosen = new Set([start, end - 1]);
    let low = -1;
    let high = -1;
    for (let index = start; index < end; index += 1) {
      const y = points[index][1];
      if (!Number.isFinite(y)) chosen.add(index);
      else {
        if (low < 0 || y < points[low][1]) low = index;
        if (high < 0 || y > points[high][1]) high = index;
      }
    }
    if (low >= 0) chosen.add(low).add(high);
    for (const index of [...chosen].sort((a, b) => a - b)) kept.push(points[index]);
    start = end;
  }
  return kept;
}

/** [smallest, largest] of many numbers (Math.min(...values) overflows the stack on long runs). */
function extent(values) {
  let low = Infinity;
  let high = -Infinity;
  for (const value of values) {
    if (value < low) low = value;
    if (value > high) high = value;
  }
  return [low, high];
}

/** A sentence for screen readers: each series' first and last value. */
function describe(title, series) {
  const parts = series.map((s) => {
    const values = s.points.filter(([, y]) => Number.isFinite(y));
    if (values.length === 0) return `${s.name}: no values`;
    const [first, last] = [values[0], values.at(-1)];
    return `${s.name} from ${formatNumber(first[1])} at step ${first[0]} to ${formatNumber(last[1])} at step ${last[0]} (${values.length} points)`;
  });
  return `${title}: ${parts.join("; ") || "no points yet"}`;
}

/** About `count` round tick values covering [low, high] (1, 2 or 5 times a power of ten apart). */
export function niceTicks(low, high, count) {
  if (low === high) {
    const pad = Math.abs(low) * 0.1 || 1;
    [low, high] = [low - pad, high + pad];
  }
  const rough = (high - low) / Math.max(count - 1, 1);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  const first = Math.floor(low / step);
  const last = Math.ceil(high / step);
  const ticks = [];
  for (let index = first; index <= last; index += 1) ticks.push(Number((index * step).toPrecision(12)));
  return ticks;
}

/** A short label for a value; tiny and huge numbers (learning rates, token rates) in exponent form. */
export function formatNumber(value, context = [value]) {
  const largest = Math.max(...context.map(Math.abs));
  if (value === 0) return "0";
  if (largest < 1e-2 || largest >= 1e6) return value.toExponential(1).replace("e-", "e−");
  if (largest >= 1000) return Math.round(value).toLocaleString("en-US");
  return Number(value.toPrecision(3)).toString();
}

function round(value) {
  return Math.round(value * 10) / 10;
}

function element(name, attributes = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

function label(text, x, y, anchor) {
  const node = element("text", { x, y, "text-anchor": anchor });
  node.textContent = text;
  return node;
}
