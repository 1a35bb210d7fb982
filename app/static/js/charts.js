// Inline SVG charts (no library): line charts for training curves and per-task scores, and the
// forgetting heatmap as a table whose cells are coloured by score.

import { fmt, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2f5bd3", "#d9822b", "#1b8a4b", "#9b3fb5", "#c0392b", "#0f8b8d", "#7a5210", "#55607a"];

function s(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

const tick = (value) => (Math.abs(value) >= 1000 || (Math.abs(value) < 0.01 && value !== 0)
  ? value.toExponential(1) : Number(value.toPrecision(3)).toString());

// series: [{name, points: [[x, y], ...]}]; returns a figure with the SVG and a legend. log: a log-scaled y axis
// (a loss falls by orders of magnitude, and on a linear axis its first steps flatten the rest).
export function lineChart(title, series, { xLabel = "step", yFixed, log = false } = {}) {
  const width = 560, height = 220, left = 52, right = 12, top = 12, bottom = 32;
  const scaled = log ? series.map((line) => ({ ...line, points: line.points.filter(([, y]) => y > 0)
    .map(([x, y]) => [x, Math.log10(y)]) })) : series;
  const label = log ? (y) => tick(10 ** y) : tick;
  const points = scaled.flatMap((line) => line.points);
  const figure = h("figure", { class: "chart-figure" }, h("figcaption", {}, h("strong", {}, title)));
  if (!points.length) {
    figure.append(h("p", { class: "muted" }, "No data yet."));
    return figure;
  }
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = yFixed || [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const Y = (y) => height - bottom - ((y - y0) / (y1 - y0)) * (height - top - bottom);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "data-scale": log ? "log" : "linear",
    "aria-label": `${title}: ${series.map((l) => `${l.name} from ${tick(l.points[0]?.[1] ?? 0)} to ${tick(l.points.at(-1)?.[1] ?? 0)}`).join("; ")}` });
  svg.append(s("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
    s("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }));
  for (const y of [y0, (y0 + y1) / 2, y1]) {
    svg.append(s("text", { x: left - 6, y: Y(y) + 4, "text-anchor": "end" }, label(y)));
  }
  if (log) svg.append(s("text", { x: 4, y: top + 4, class: "scale" }, "log"));
  for (const x of [x0, x1]) svg.append(s("text", { x: X(x), y: height - bottom + 16, "text-anchor": "middle" }, tick(x)));
  svg.append(s("text", { x: (left + width) / 2, y: height - 2, "text-anchor": "middle" }, xLabel));
  scaled.forEach((line, i) => {
    const color = COLORS[i % COLORS.length];
    const path = line.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" ");
    svg.append(s("polyline", { class: "series", points: path, stroke: color }));
    if (line.points.length < 30) {
      for (const [x, y] of line.points) svg.append(s("circle", { cx: X(x), cy: Y(y), r: 3, fill: color }));
    }
  });
  figure.append(svg);
  if (series.length > 1) {
    figure.append(h("div", { class: "legend" }, series.map((line, i) =>
      h("span", { style: `--swatch:${COLORS[i % COLORS.length]}` }, line.name))));
  }
  return figure;
}

// Red (0) to green (1), light enough for dark text.
const cellColor = (score) => `hsl(${Math.round(score * 120)}, 65%, ${78 - score * 8}%)`;

// onCell(version, task): a scored cell is a button that opens the examples behind it.
export function heatmap(record, onCell) {
  const head = h("tr", {}, h("th", { scope: "col" }, "version"),
    record.tasks.map((task) => h("th", { scope: "col" }, task)));
  const rows = record.versions.map((version, r) => h("tr", { "data-version": String(version) },
    h("th", { scope: "row" }, `v${version}`),
    record.matrix[r].map((score, i) => h("td", {
      class: "cell", style: score === null ? null : `background:${cellColor(score)}`,
      "aria-label": `v${version} on ${record.tasks[i]}: ${score === null ? "not evaluated" : fmt.score(score)}`,
    }, score === null || !onCell ? fmt.score(score) : h("button", { type: "button", class: "cell-open",
      title: `The held-out examples behind v${version}'s score on ${record.tasks[i]}`,
      "aria-label": `Examples of v${version} on ${record.tasks[i]}`, onclick: () => onCell(version, record.tasks[i]) },
    fmt.score(score))))));
  return h("table", { class: "heatmap" }, h("caption", { class: "muted" },
    "Score of each version (rows) on each task learned (columns), held-out exact match"),
  h("thead", {}, head), h("tbody", {}, rows));
}
