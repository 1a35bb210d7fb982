// Models: lineages, each one's version chain, head history, promote/rollback, and the forgetting record.

import { api, lineagesOf } from "./api.js";
import { heatmap, lineChart } from "./charts.js";
import { badge, fill, fmt, h } from "./dom.js";

export async function modelsPage(main, _params, signal) {
  const models = lineagesOf(await api("/v1/models", { signal }));
  fill(main, h("h1", {}, "Models"), h("div", { class: "card" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Lineage", "Head", "Versions", "Tasks learned", "Base model", "Registered"]
      .map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, models.length ? models.map((model) => h("tr", {},
      h("td", {}, h("a", { href: `#/models/${encodeURIComponent(model.id)}` }, model.id)),
      h("td", {}, `v${model.head}`), h("td", {}, model.versions), h("td", {}, model.tasks.join(", ") || "–"),
      h("td", { class: "mono" }, model.base_model), h("td", {}, fmt.time(model.created))))
      : h("tr", {}, h("td", { colspan: "6", class: "muted" }, "No lineages yet: register one with `sculpt models create`."))))));
}

function versionCard(version) {
  const failed = version.gate_verdict?.failed || [];
  return h("article", { class: `version ${version.status}${version.is_head ? " is-head" : ""}${version.deleted ? " deleted" : ""}`,
    "data-version": String(version.version), "data-parent": version.parent_version ? String(version.parent_version) : "",
    "aria-label": `Version ${version.version}${version.is_head ? ", the head" : ""}${version.deleted ? ", deleted" : ""}${version.pinned ? ", pinned" : ""}` },
  h("h3", {}, `v${version.version} `, version.is_head ? badge("head") : null),
  h("p", {}, badge(version.status), " ", version.deleted ? badge("deleted", "failed") : null, " ",
    version.pinned ? badge("pinned") : null),
  version.deleted ? h("p", { class: "muted" }, `checkpoint deleted ${fmt.time(version.deleted_at)}`) : null,
  h("p", {}, version.parent_version ? `parent v${version.parent_version}` : "base model"),
  h("p", {}, `task: ${version.task || "–"}`),
  version.strategy ? h("p", { class: "muted" }, version.strategy) : null,
  failed.length ? h("p", { class: "error" }, `failed: ${failed.map((f) => `${f.gate} (${fmt.score(f.value)} vs ${fmt.score(f.threshold)})`).join(", ")}`) : null,
  version.job_id ? h("p", {}, h("a", { href: `#/jobs/${version.job_id}`, class: "mono" }, version.job_id)) : null);
}

// The lineage is a tree: split it into branches, each a run of versions where every one is the parent
// of the next. The head's chain (base to head) comes first; every other branch starts from the version
// it was trained from, so an arrow always joins a parent to its child.
function branches(versions) {
  const byNumber = new Map(versions.map((v) => [v.version, v]));
  const children = new Map();
  for (const v of versions) children.set(v.parent_version, [...(children.get(v.parent_version) || []), v]);
  const placed = new Set();
  const headChain = [];
  for (let v = versions.find((x) => x.is_head); v && !placed.has(v); v = byNumber.get(v.parent_version)) {
    headChain.unshift(v);
    placed.add(v);
  }
  const rows = headChain.length ? [headChain] : [];
  for (const start of versions) {
    if (placed.has(start)) continue;
    const row = [start];
    placed.add(start);
    for (let next; (next = (children.get(row.at(-1).version) || []).find((c) => !placed.has(c)));) {
      row.push(next);
      placed.add(next);
    }
    rows.push(row);
  }
  return rows;
}

function tree(versions) {
  return h("div", { class: "lineage" }, branches(versions).map((row, i) => {
    const from = row[0].parent_version;
    const label = i === 0 ? "The head's chain, from the base" : `Branch from v${from}`;
    return h("div", { class: "chain", role: "list", "aria-label": label, "data-from": from ? String(from) : "" },
      from ? h("span", { class: "branch-from muted" }, `from v${from}`) : null,
      row.flatMap((version, j) => [j || from ? h("span", { class: "arrow", "aria-hidden": "true" }, "→") : null,
        h("div", { role: "listitem" }, versionCard(version))]));
  }));
}

function figures(pairs) {
  return h("div", { class: "figures" }, pairs.map(([name, value]) =>
    h("div", { class: "figure" }, h("div", { class: "value" }, value), h("div", { class: "name" }, name))));
}

function headForm(model, versions, reload) {
  const error = h("p", { class: "error", role: "alert" });
  const select = h("select", { id: "head-version", name: "version" }, versions.map((v) =>
    h("option", { value: String(v.version), selected: v.is_head }, `v${v.version} (${v.status}${v.task ? `, ${v.task}` : ""})`)));
  const reason = h("input", { id: "head-reason", name: "reason", required: true, maxlength: "2000",
    placeholder: "why, for the audit trail" });
  const force = h("input", { id: "head-force", type: "checkbox", name: "force" });
  const submit = async (event) => {
    event.preventDefault();
    try {
      await api(`/v1/models/${encodeURIComponent(model.id)}/head`, { method: "POST",
        body: { version: Number(select.value), reason: reason.value, force: force.checked } });
      await reload();
    } catch (e) {
      fill(error, e.message);
    }
  };
  return h("form", { onsubmit: submit, "aria-labelledby": "head-form-title" },
    h("h2", { id: "head-form-title" }, "Promote or roll back"),
    h("label", { for: "head-version" }, "Version to make the head"), select,
    h("label", { for: "head-reason" }, "Reason"), reason,
    h("label", { class: "check", for: "head-force" }, force, "Force (promote a version its gates rejected)"),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Move head")), error);
}

// Which version's figures the record shows (the head unless one is picked), with a picker for the others.
function shownVersion(record, model, versions, pick) {
  const picker = h("select", { id: "record-version", onchange: (e) => pick(Number(e.target.value)) }, versions.map((v) =>
    h("option", { value: String(v.version), selected: v.version === record.version }, `v${v.version}${v.is_head ? " (head)" : ""}`)));
  return h("p", { id: "record-shows" }, h("label", { for: "record-version" },
    `Figures of v${record.version}${record.version === model.head ? ", the head" : ", not the head"}, over its chain's tasks: `),
  picker);
}

// The examples behind one cell: each held-out prompt with the previous version's answer beside this one's.
async function openExamples(panel, modelId, version, task) {
  fill(panel, h("p", { class: "muted" }, `Loading v${version} on ${task}…`));
  try {
    const listing = await api(`/v1/models/${encodeURIComponent(modelId)}/versions/${version}/examples?task=${encodeURIComponent(task)}&limit=200`);
    const previous = listing.data.find((e) => e.previous_version !== null)?.previous_version;
    fill(panel, h("h2", {}, `v${version} on ${task}: the held-out examples`),
      h("p", { class: "muted" }, previous ? `Beside v${previous}'s answers (the version before it). ${listing.data.filter((e) => e.change === "lost").length} lost, ${listing.data.filter((e) => e.change === "gained").length} gained.`
        : "No earlier answers to compare with."),
      h("table", { class: "examples", "aria-label": `Examples of v${version} on ${task}` },
        h("thead", {}, h("tr", {}, ["Prompt", "Reference", previous ? `v${previous}` : "Before", `v${version}`, "Change"]
          .map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, listing.data.map((e) => h("tr", { class: e.change || "" },
          h("td", {}, e.prompt), h("td", {}, e.reference), h("td", {}, e.previous_answer ?? "–"),
          h("td", {}, e.answer), h("td", {}, e.change ?? ""))))),
      listing.has_more ? h("p", { class: "muted" }, "First 200 shown; the API pages the rest.") : null);
  } catch (e) {
    fill(panel, h("p", { class: "error", role: "alert" }, e.message));
  }
  panel.scrollIntoView({ block: "nearest" });
}

// A suite's figures as people read them: counts as whole numbers, shares and ratios to three places.
const FIGURE_LABELS = { n: "items", asked: "asked", lost: "lost", base_right: "base right", n_harmful: "harmful prompts",
  n_benign: "benign prompts", over_refusal_rate: "over-refusal rate" };
const isCount = (key) => key in FIGURE_LABELS && key !== "over_refusal_rate";

function forgetting(record, shown, modelId) {
  // Figures only: how long the measurement took is not one.
  const numbers = (group) => Object.entries(group || {}).filter(([k, v]) => typeof v === "number" && k !== "seconds")
    .map(([k, v]) => [FIGURE_LABELS[k] ?? k.replaceAll("_", " "), isCount(k) ? String(Math.round(v)) : fmt.score(v)]);
  // Every suite the version was measured with (older servers sent only general and safety).
  const suites = Object.entries(record.suites || { general: record.general, safety: record.safety })
    .filter(([, result]) => numbers(result).length);
  const perTask = record.tasks.map((task, i) => ({ name: task,
    points: record.versions.map((v, r) => [v, record.matrix[r][i]]).filter(([, score]) => score !== null) }));
  const examples = h("div", { id: "examples", "aria-live": "polite" });
  return [
    h("div", { class: "card", id: "forgetting" }, h("h2", {}, "Forgetting"), shown,
      figures([["ACC", fmt.score(record.acc)], ["BWT", record.bwt === null ? "–" : (record.bwt >= 0 ? "+" : "") + fmt.score(record.bwt)],
        ...Object.entries(record.forgetting || {}).map(([task, f]) => [`forgetting ${task}`, fmt.score(f)])]),
      record.versions.length ? [heatmap(record, (version, task) => openExamples(examples, modelId, version, task)),
        h("p", { class: "muted" }, "Open a score to see the examples behind it.")]
        : h("p", { class: "muted" }, "No evaluations yet: train a task first."), examples),
    h("div", { class: "grid" },
      h("div", { class: "card" }, lineChart("Score per task across versions", perTask, { xLabel: "version", yFixed: [0, 1] })),
      h("div", { class: "card", id: "suites" }, h("h2", {}, `v${record.version}: general ability and safety`),
        suites.length
          ? suites.flatMap(([name, result]) => [h("h3", {}, name.replaceAll("_", " ")), figures(numbers(result)),
            result.changed?.length ? changedAnswers(result.changed) : null])
          : h("p", { class: "muted" }, "Measured after the first job."))),
  ];
}

// What a version now answers where the base was right and it is not: what plain fine-tuning destroys.
function changedAnswers(changed) {
  return h("table", { class: "changed", "aria-label": "Answers that changed" },
    h("caption", {}, "Answers the base got right that this version does not"),
    h("thead", {}, h("tr", {}, ["Question", "Base", "This version"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, changed.map((c) => h("tr", {}, h("td", {}, c.prompt), h("td", {}, c.base), h("td", {}, c.answer)))));
}

export async function modelPage(main, [modelId], signal) {
  const id = encodeURIComponent(modelId);
  let picked = null; // the version whose figures to show; null: the head
  const reload = async () => {
    const [model, versions, history, record] = await Promise.all([
      api(`/v1/models/${id}`, { signal }), api(`/v1/models/${id}/versions`, { signal }),
      api(`/v1/models/${id}/head/history`, { signal }),
      api(`/v1/models/${id}/evaluations${picked ? `?version=${picked}` : ""}`, { signal })]);
    const pick = (version) => { picked = version; reload(); };
    fill(main, h("h1", {}, `Model ${model.id} `, h("span", { class: "muted" }, `head v${model.head}`)),
      h("div", { class: "card" }, h("h2", {}, "Versions"), tree(versions.data)),
      forgetting(record, shownVersion(record, model, versions.data, pick), model.id),
      h("div", { class: "grid" },
        h("div", { class: "card" }, headForm(model, versions.data, reload)),
        h("div", { class: "card" }, h("h2", {}, "Head history"), h("table", { class: "history" },
          h("thead", {}, h("tr", {}, ["When", "From", "To", "By", "Reason"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, history.data.slice().reverse().map((change) => h("tr", {},
            h("td", { class: "nowrap" }, fmt.time(change.created_at)), h("td", {}, change.from_version ? `v${change.from_version}` : "–"),
            h("td", {}, `v${change.to_version}`), h("td", {}, change.actor), h("td", {}, change.reason))))))));
    // A long chain scrolls sideways: keep the head in view.
    main.querySelector("article.is-head")?.scrollIntoView({ block: "nearest", inline: "nearest" });
  };
  await reload();
}
