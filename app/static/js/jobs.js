// Jobs: the live list (progress bars fed by each active job's event stream) and a job's page.

import { api, followJob, isTerminal } from "./api.js";
import { lineChart } from "./charts.js";
import { badge, fill, fmt, h, phaseName, progressBar } from "./dom.js";

const LIVE_STREAMS = 4;        // browsers allow ~6 connections per host; leave room for API calls
const LIST_REFRESH_MS = 10000; // picks up jobs created elsewhere; live rows come from their streams

function jobRow(job) {
  return h("tr", { "data-job-id": job.id },
    h("td", {}, h("a", { href: `#/jobs/${job.id}`, class: "mono" }, job.id)),
    h("td", {}, job.model),
    h("td", {}, job.continual?.task || "–"),
    h("td", {}, badge(job.status)),
    h("td", {}, job.status === "running" && job.progress?.phase ? phaseName(job.progress.phase) : "–"),
    h("td", {}, progressBar(job)),
    h("td", {}, job.fine_tuned_model ? h("a", { href: `#/models/${job.fine_tuned_model.split(":")[0]}` }, job.fine_tuned_model) : "–"),
    h("td", {}, fmt.time(job.created_at)));
}

export async function jobsPage(main, _params, signal) {
  const tbody = h("tbody");
  const error = h("p", { class: "error", role: "alert" });
  fill(main, h("h1", {}, "Fine-tuning jobs"), error, h("div", { class: "card" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Job", "Model", "Task", "Status", "Phase", "Progress", "Result", "Created"]
      .map((title) => h("th", { scope: "col" }, title)))), tbody)));
  const following = new Set();

  const follow = (job) => {
    following.add(job.id);
    followJob(job.id, (event) => {
      if (event.event !== "progress") return;
      tbody.querySelector(`[data-job-id="${event.data.id}"]`)?.replaceWith(jobRow(event.data));
    }, signal).catch(() => {}).finally(() => following.delete(job.id));
  };

  const load = async () => {
    try {
      const jobs = (await api("/v1/fine_tuning/jobs?limit=50", { signal })).data;
      fill(tbody, jobs.length ? jobs.map(jobRow)
        : h("tr", {}, h("td", { colspan: "8", class: "muted" }, "No jobs yet. ", h("a", { href: "#/new" }, "Start one."))));
      fill(error);
      for (const job of jobs.filter((j) => !isTerminal(j.status) && !following.has(j.id))) {
        if (following.size < LIVE_STREAMS) follow(job);
      }
    } catch (e) {
      if (!signal.aborted) fill(error, e.message);
    }
  };
  await load();
  const timer = setInterval(load, LIST_REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer));
}

// Seconds in each phase, from the attempt's start event, the phase events and the final event.
function phaseDurations(events) {
  const marks = [];
  for (const event of events) {
    const data = event.data || {};
    if (data.attempt !== undefined) {
      marks.length = 0; // a retried job: only the last attempt counts
      marks.push(["loading", event.created_at]);
    } else if (data.phase) marks.push([data.phase, event.created_at]);
    else if (data.status && isTerminal(data.status)) marks.push([null, event.created_at]);
  }
  const now = Date.now() / 1000;
  return marks.filter(([phase]) => phase).map(([phase, at], i) => [phase, (marks[i + 1]?.[1] ?? now) - at, !marks[i + 1]]);
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value ?? "–")]));
}

export async function jobPage(main, [jobId], signal) {
  let job = await api(`/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}`, { signal });
  const events = [];
  const header = h("div"), summary = h("div", { class: "card" }), charts = h("div", { class: "grid" });
  const phases = h("div", { class: "card" }), log = h("tbody");
  const actionError = h("p", { class: "error", role: "alert" });
  fill(main, header, actionError, summary, charts, h("div", { class: "grid" }, phases,
    h("div", { class: "card" }, h("h2", {}, "Events"), h("div", { class: "log" }, h("table", {}, log)))));

  const cancel = async () => {
    try {
      job = await api(`/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" });
      render();
    } catch (e) {
      fill(actionError, e.message);
    }
  };

  const render = () => {
    fill(header, h("div", { class: "row" }, h("h1", {}, `Job `, h("span", { class: "mono" }, job.id)),
      h("span", { id: "job-status", role: "status", "aria-label": "Job status" }, badge(job.status)),
      !isTerminal(job.status) && h("button", { type: "button", class: "danger", onclick: cancel,
        disabled: job.cancel_requested, "aria-label": `Cancel job ${job.id}` },
      job.cancel_requested ? "Cancelling…" : "Cancel job")));
    const result = job.result || {};
    fill(summary, h("div", { class: "row" }, h("div", { style: "flex:1" }, progressBar(job)),
      job.status === "running" && job.progress?.unit === "items"
        ? h("span", { class: "muted", id: "scoring" }, `${job.progress.stage}: ${job.progress.step} of ${job.progress.total_steps} items scored`) : null,
      job.status === "running" && job.progress?.eta_seconds ? h("span", { class: "muted" }, `ETA ${fmt.seconds(job.progress.eta_seconds)}`) : null),
    job.error ? h("p", { class: "error", role: "alert" }, `${job.error.code}: ${job.error.message}`) : null,
    facts([["Model", job.model], ["Task", job.continual?.task], ["Strategy", job.continual?.strategy],
      ["Training file", job.training_file],
      ["Held-out set", job.validation_file ?? "10% of the training file (a seeded split, not trained on)"],
      ["Hyperparameters", JSON.stringify(job.hyperparameters)],
      ["Trained tokens", fmt.number(job.trained_tokens)], ["Created", fmt.time(job.created_at)],
      ["Finished", fmt.time(job.finished_at)],
      ["Result", job.fine_tuned_model ? h("span", {}, h("a", { href: `#/models/${job.fine_tuned_model.split(":")[0]}` }, job.fine_tuned_model),
        " ", badge(result.promoted ? "promoted" : "rejected"),
        result.failed_gates?.length ? ` failed gates: ${result.failed_gates.map((g) => g.gate).join(", ")}` : "") : "–"],
      ["ACC / BWT", job.result ? `${fmt.score(result.acc)} / ${fmt.score(result.bwt)}` : "–"]]));
  };

  const renderCharts = () => {
    const steps = events.filter((e) => e.type === "metrics" && e.data?.loss !== undefined).map((e) => e.data);
    const line = (name, key) => [{ name, points: steps.filter((d) => d[key] != null).map((d) => [d.step, d[key]]) }];
    const losses = [...line("train", "loss"), ...line("validation", "valid_loss")].filter((s) => s.points.length);
    fill(charts, h("div", { class: "card" }, lineChart("Training loss", losses, { log: true })),
      h("div", { class: "card" }, lineChart("Learning rate", line("lr", "lr")),
        lineChart("Tokens per second", line("tokens/s", "tokens_per_second"))));
    const spans = phaseDurations(events);
    fill(phases, h("h2", {}, "Phases"), spans.length ? h("table", {}, h("tbody", {}, spans.map(([phase, seconds, current]) =>
      h("tr", {}, h("th", { scope: "row" }, phaseName(phase)),
        h("td", {}, current && !isTerminal(job.status) ? `${fmt.seconds(seconds)} so far` : fmt.seconds(seconds))))))
      : h("p", { class: "muted" }, isTerminal(job.status) ? "The job never ran." : "Not started yet."));
  };

  render();
  renderCharts();
  let redraw = null; // batch chart redraws: a finished job's history arrives as a burst of events
  await followJob(jobId, (event) => {
    if (event.event === "progress") {
      job = event.data;
      render();
    } else {
      events.push(event.data);
      log.prepend(h("tr", { class: event.data.level }, h("td", { class: "mono" }, fmt.time(event.data.created_at).slice(11)),
        h("td", {}, event.data.message)));
    }
    redraw ??= setTimeout(() => { redraw = null; renderCharts(); }, 200);
  }, signal);
}
