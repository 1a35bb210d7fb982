// The dashboard's entry point: hash routes, the API-key panel, and page lifetimes (each page's
// streams and timers stop when the user navigates away).

import { apiKey, onUnauthorized } from "./api.js";
import { fill, h } from "./dom.js";
import { jobPage, jobsPage } from "./jobs.js";
import { modelPage, modelsPage } from "./models.js";
import { newJobPage } from "./newjob.js";
import { playgroundPage } from "./playground.js";

const ROUTES = [
  [/^#\/jobs\/([^/]+)$/, jobPage, "jobs"],
  [/^#\/models\/([^/]+)$/, modelPage, "models"],
  [/^#\/models$/, modelsPage, "models"],
  [/^#\/new$/, newJobPage, "new"],
  [/^#\/playground(?:\/([^/]+))?$/, playgroundPage, "playground"],
  [/^(#\/?(jobs)?)?$/, jobsPage, "jobs"],
];

const main = document.getElementById("main");
const keyPanel = document.getElementById("key-panel");
const keyInput = document.getElementById("key-input");
let current = null;

function showKeyPanel(reason) {
  document.getElementById("key-reason").textContent = reason;
  keyPanel.hidden = false;
  keyInput.focus();
}

async function render() {
  current?.abort();
  current = new AbortController();
  const { signal } = current;
  const [pattern, page, section] = ROUTES.find(([pattern]) => pattern.test(location.hash)) || ROUTES.at(-1);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const params = (location.hash.match(pattern) || []).slice(1).map(decodeURIComponent);
  fill(main, h("p", { class: "muted" }, "Loading…"));
  try {
    await page(main, params, signal);
  } catch (error) {
    if (signal.aborted) return;
    fill(main, h("p", { class: "error", role: "alert" }, error.message));
  }
}

onUnauthorized.add((error) => showKeyPanel(apiKey.get()
  ? `The server refused this key: ${error.message}` : "This server needs an API key. It is kept in this browser tab only (sessionStorage)."));

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey.set(keyInput.value.trim());
  keyInput.value = "";
  keyPanel.hidden = true;
  render();
});
document.getElementById("key-forget").addEventListener("click", () => {
  apiKey.clear();
  keyPanel.hidden = true;
  render();
});
document.getElementById("key-button").addEventListener("click", () =>
  showKeyPanel(apiKey.get() ? "A key is set for this tab; enter another to replace it." : "Enter an API key for this server."));
window.addEventListener("hashchange", render);
render();
