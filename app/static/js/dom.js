// A small element builder: text always goes in as text, never as HTML.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export const fmt = {
  score: (value) => (value === null || value === undefined ? "–" : value.toFixed(3)),
  percent: (value) => (value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`),
  number: (value) => (value === null || value === undefined ? "–" : Number(value).toLocaleString("en")),
  time: (unix) => (unix ? new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 16) : "–"),
  seconds: (value) => (value === null || value === undefined ? "–"
    : value < 1 ? "<1 s" : value < 90 ? `${Math.round(value)} s` : `${(value / 60).toFixed(1)} min`),
};

export function badge(text, kind = text) {
  return h("span", { class: `badge ${kind}` }, text);
}

// Where each phase starts and ends on the job's bar: training takes most of it, by its step fraction;
// the scoring phases move by the share of items scored.
const PHASE_SPAN = { loading: [0, 3], evaluating_base: [3, 12], calibrating: [12, 15], decomposing: [15, 18],
  training: [18, 85], evaluating: [85, 97], saving: [97, 99] };

// Whether the job's progress counts something within its phase (training's steps, a scoring phase's items).
const counted = (progress) => progress.phase === "training" || progress.unit === "items";

export function overallPercent(job) {
  if (job.status === "succeeded") return 100;
  const progress = job.progress || {};
  const [start, end] = PHASE_SPAN[progress.phase] || [0, 0];
  if (job.status !== "running") return start;
  const within = counted(progress) ? progress.fraction || 0 : 0;
  return Math.round(start + (end - start) * within);
}

export const phaseName = (phase) => phase.replaceAll("_", " ");

// The job's progress bar: the whole job's progress; its text names the phase (and the phase's share).
export function progressBar(job) {
  const progress = job.progress || {};
  const value = overallPercent(job);
  const label = job.status === "succeeded" ? "done"
    : job.status !== "running" ? job.status
    : !progress.phase ? "running"
    : counted(progress) ? `${phaseName(progress.phase)} ${Math.round((progress.fraction || 0) * 100)}%`
    : phaseName(progress.phase);
  return h("div", {
    class: `progress ${job.status}`, role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-valuenow": String(value), "aria-valuetext": label, "aria-label": `Progress of ${job.id}`,
  }, h("div", { class: "fill", style: `width:${value}%` }), h("span", { class: "label" }, label));
}
