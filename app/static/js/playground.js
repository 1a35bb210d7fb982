// Playground: one prompt, two versions' answers side by side as they stream, and beside each answer the
// tasks that version learned with its scores, so "what changed" is one look.

import { api, lineagesOf, streamChat } from "./api.js";
import { fill, fmt, h } from "./dom.js";

// The tasks a version learned (its own and its ancestors', oldest first) and its score on each task.
function learned(version, byNumber, record) {
  const tasks = [];
  for (let v = version; v; v = byNumber.get(v.parent_version)) if (v.task) tasks.unshift(v.task);
  const row = record.matrix[record.versions.indexOf(version.version)];
  return tasks.map((task) => [task, row ? row[record.tasks.indexOf(task)] : null]);
}

function sidePanel(side, versions, initial, byNumber, record) {
  const select = h("select", { id: `version-${side}`, name: `version-${side}`, "aria-label": `Version ${side}` },
    versions.map((v) => h("option", { value: String(v.version), selected: v.version === initial },
      `v${v.version}${v.is_head ? " (head)" : ""}`)));
  const facts = h("div", { class: "learned", "aria-live": "polite" });
  const answer = h("pre", { class: "answer", id: `answer-${side}`, "aria-label": `Answer of version ${side}` });
  const error = h("p", { class: "error", role: "alert" });
  const describe = () => {
    const version = byNumber.get(Number(select.value));
    const rows = learned(version, byNumber, record);
    fill(facts, rows.length
      ? h("table", { class: "scores" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Task learned"),
        h("th", { scope: "col" }, "Score"))), h("tbody", {}, rows.map(([task, score]) =>
        h("tr", {}, h("td", {}, task), h("td", {}, fmt.score(score))))))
      : h("p", { class: "muted" }, "The base model: no tasks learned."));
  };
  select.addEventListener("change", describe);
  describe();
  const card = h("section", { class: "card side", "aria-label": `Side ${side}` },
    h("label", { for: `version-${side}` }, `Version ${side}`), select, facts, h("h3", {}, "Answer"), answer, error);
  return { card, select, answer, error };
}

export async function playgroundPage(main, params, signal) {
  const lineages = lineagesOf(await api("/v1/models", { signal }));
  if (!lineages.length) {
    fill(main, h("h1", {}, "Playground"), h("p", { class: "muted" }, "No lineages yet: register one with `sculpt models create`."));
    return;
  }
  const lineage = lineages.find((m) => m.id === params[0]) || lineages[0];
  const [listing, record] = await Promise.all([api(`/v1/models/${encodeURIComponent(lineage.id)}/versions`, { signal }),
    api(`/v1/models/${encodeURIComponent(lineage.id)}/evaluations`, { signal })]);
  const versions = listing.data;
  const byNumber = new Map(versions.map((v) => [v.version, v]));
  const head = byNumber.get(lineage.head);
  // Only versions with a checkpoint can answer; the deleted ones still tell what their descendants learned.
  const servable = versions.filter((v) => !v.deleted);
  const parent = byNumber.get(head.parent_version);
  const before = (parent && !parent.deleted ? parent.version : servable.filter((v) => v.version < head.version).at(-1)?.version)
    ?? head.version;
  const sides = [sidePanel("A", servable, head.version, byNumber, record), sidePanel("B", servable, before, byNumber, record)];

  const choose = h("select", { id: "lineage", "aria-label": "Lineage", onchange: (e) => { location.hash = `#/playground/${encodeURIComponent(e.target.value)}`; } },
    lineages.map((m) => h("option", { value: m.id, selected: m.id === lineage.id }, m.id)));
  const system = h("textarea", { id: "system", name: "system", rows: "2",
    placeholder: "Optional; tasks trained with a system prompt answer in their format only with it" });
  const prompt = h("textarea", { id: "prompt", name: "prompt", rows: "4", required: true, placeholder: "Ask both versions the same thing…" });
  // A held-out example of a task the head learned (never trained on): what a version learned, and kept, at a glance.
  const learnedTasks = learned(head, byNumber, record).map(([task]) => task)
    .filter((task) => record.versions.some((v, r) => record.matrix[r][record.tasks.indexOf(task)] !== null));
  const example = h("select", { id: "example", "aria-label": "Held-out example", onchange: (e) => prefill(e.target.value) },
    h("option", { value: "" }, learnedTasks.length ? "Try a held-out example of…" : "No tasks learned yet"),
    learnedTasks.map((task) => h("option", { value: task }, task)));
  const expected = h("p", { class: "muted", id: "expected", "aria-live": "polite" });
  const shownOf = {}; // task -> how many of its examples were prefilled: each pick shows the next one
  const prefill = async (task) => {
    if (!task) return;
    try {
      const examples = (await api(`/v1/models/${encodeURIComponent(lineage.id)}/versions/${head.version}/examples?task=${encodeURIComponent(task)}&limit=200`, { signal })).data;
      const chosen = examples[(shownOf[task] = (shownOf[task] ?? -1) + 1) % examples.length];
      prompt.value = chosen.prompt;
      system.value = chosen.system ?? "";
      fill(expected, `Held-out example ${chosen.index + 1} of ${task}; the expected answer: ${chosen.reference}`);
    } catch (failure) {
      fill(expected, failure.message);
    }
    example.value = "";
  };
  const maxTokens = h("input", { id: "max-tokens", type: "number", min: "1", value: "64" });
  const temperature = h("input", { id: "temperature", type: "number", min: "0", max: "2", step: "0.1", value: "0" });
  const run = h("button", { type: "submit" }, "Ask both");

  const ask = async (event) => {
    event.preventDefault();
    run.disabled = true;
    const messages = [...(system.value.trim() ? [{ role: "system", content: system.value }] : []),
      { role: "user", content: prompt.value }];
    try {
      await Promise.all(sides.map(async ({ select, answer, error }) => {
        fill(answer);
        fill(error);
        try {
          await streamChat({ model: `${lineage.id}:v${select.value}`, messages, max_tokens: Number(maxTokens.value),
            temperature: Number(temperature.value) }, (text) => answer.append(text), signal);
        } catch (failure) {
          if (!signal.aborted) fill(error, failure.message);
        }
      }));
    } finally {
      run.disabled = false;
    }
  };

  fill(main, h("h1", {}, "Playground"),
    h("form", { class: "card", id: "playground-form", onsubmit: ask },
      h("div", { class: "row" }, h("label", { for: "lineage" }, "Lineage"), choose,
        h("label", { for: "max-tokens" }, "Max tokens"), maxTokens,
        h("label", { for: "temperature" }, "Temperature (0: greedy)"), temperature),
      h("div", { class: "row" }, example), expected,
      h("label", { for: "system" }, "System message"), system,
      h("label", { for: "prompt" }, "Prompt"), prompt, run),
    h("div", { class: "sides" }, sides.map((s) => s.card)));
}
