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
  return h("article", { class: `version ${version.status}${version.is_head ? " is-head" : ""}`, "data-version": String(version.version),
    "aria-label": `Version ${version.version}${version.is_head ? ", the head" : ""}` },
  h("h3", {}, `v${version.version} `, version.is_head ? badge("head") : null),
  h("p", {}, badge(version.status)),
  h("p", {}, version.parent_version ? `parent v${version.parent_version}` : "base model"),
  h("p", {}, `task: ${version.task || "–"}`),
  version.strategy ? h("p", { class: "muted" }, version.strategy) : null,
  failed.length ? h("p", { class: "error" }, `failed: ${failed.map((f) => `${f.gate} (${fmt.score(f.value)} vs ${fmt.score(f.threshold)})`).join(", ")}`) : null,
  version.job_id ? h("p", {}, h("a", { href: `#/jobs/${version.job_id}`, class: "mono" }, version.job_id)) : null);
}

function chain(versions) {
  return h("div", { class: "chain", role: "list", "aria-label": "Versions, oldest first" },
    versions.flatMap((version, i) => [i ? h("span", { class: "arrow", "aria-hidden": "true" }, "→") : null,
      h("div", { role: "listitem" }, versionCard(version))]));
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

function forgetting(record) {
  // Figures only: how long the measurement took is not one.
  const numbers = (group) => Object.entries(group || {}).filter(([k, v]) => typeof v === "number" && k !== "seconds")
    .map(([k, v]) => [k.replaceAll("_", " "), k.startsWith("n_") ? String(v) : fmt.score(v)]);  // n_*: counts
  const general = numbers(record.general), safety = numbers(record.safety);
  const perTask = record.tasks.map((task, i) => ({ name: task,
    points: record.versions.map((v, r) => [v, record.matrix[r][i]]).filter(([, score]) => score !== null) }));
  return [
    h("div", { class: "card", id: "forgetting" }, h("h2", {}, "Forgetting"),
      figures([["ACC", fmt.score(record.acc)], ["BWT", record.bwt === null ? "–" : (record.bwt >= 0 ? "+" : "") + fmt.score(record.bwt)],
        ...Object.entries(record.forgetting || {}).map(([task, f]) => [`forgetting ${task}`, fmt.score(f)])]),
      record.versions.length ? heatmap(record) : h("p", { class: "muted" }, "No evaluations yet: train a task first.")),
    h("div", { class: "grid" },
      h("div", { class: "card" }, lineChart("Score per task across versions", perTask, { xLabel: "version", yFixed: [0, 1] })),
      h("div", { class: "card" }, h("h2", {}, "Head: general ability and safety"),
        general.length || safety.length
          ? [h("h3", {}, "General"), figures(general), h("h3", {}, "Safety"), figures(safety)]
          : h("p", { class: "muted" }, "Measured after the first job."))),
  ];
}

export async function modelPage(main, [modelId], signal) {
  const id = encodeURIComponent(modelId);
  const reload = async () => {
    const [model, versions, history, record] = await Promise.all([
      api(`/v1/models/${id}`, { signal }), api(`/v1/models/${id}/versions`, { signal }),
      api(`/v1/models/${id}/head/history`, { signal }), api(`/v1/models/${id}/evaluations`, { signal })]);
    fill(main, h("h1", {}, `Model ${model.id} `, h("span", { class: "muted" }, `head v${model.head}`)),
      h("div", { class: "card" }, h("h2", {}, "Versions"), chain(versions.data)),
      forgetting(record),
      h("div", { class: "grid" },
        h("div", { class: "card" }, headForm(model, versions.data, reload)),
        h("div", { class: "card" }, h("h2", {}, "Head history"), h("table", {},
          h("thead", {}, h("tr", {}, ["When", "From", "To", "By", "Reason"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, history.data.slice().reverse().map((change) => h("tr", {},
            h("td", { class: "nowrap" }, fmt.time(change.created_at)), h("td", {}, change.from_version ? `v${change.from_version}` : "–"),
            h("td", {}, `v${change.to_version}`), h("td", {}, change.actor), h("td", {}, change.reason))))))));
  };
  await reload();
}
