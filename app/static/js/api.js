// Talking to /v1: the API key from sessionStorage, errors carrying the API's own message, and the
// job event stream read with fetch (EventSource cannot send the Authorization header).

const KEY = "sculpt.apiKey";

export const apiKey = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `Request failed (HTTP ${status})`);
    this.status = status;
    this.code = body?.error?.code;
    this.param = body?.error?.param;
  }
}

// Listeners told when the server refuses the key (the page then asks for one).
export const onUnauthorized = new Set();

function headers(extra = {}) {
  const key = apiKey.get();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function check(response) {
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const body = isJson ? await response.json() : null;
  if (!response.ok) {
    const error = new ApiError(response.status, body);
    if (response.status === 401) onUnauthorized.forEach((listener) => listener(error));
    throw error;
  }
  return body;
}

export async function api(path, { method = "GET", body, form, signal } = {}) {
  const options = { method, signal, headers: headers() };
  if (form) {
    options.body = form;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  return check(await fetch(path, options));
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

function parseBlock(block) {
  const event = { event: "message", id: null, data: "" };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const name = line.slice(0, at);
    const value = line.slice(at + 1).replace(/^ /, "");
    if (name === "data") event.data += (event.data ? "\n" : "") + value;
    else if (name === "event" || name === "id") event[name] = value;
  }
  return event.data ? { ...event, data: JSON.parse(event.data) } : null;
}

// Follow a job's events until it ends; reconnects with Last-Event-ID if the connection drops.
export async function followJob(jobId, onEvent, signal) {
  let lastId = null;
  let finished = false;
  for (let attempt = 0; !finished && !signal.aborted; attempt++) {
    try {
      const extra = lastId ? { "Last-Event-ID": lastId } : {};
      const response = await fetch(`/v1/fine_tuning/jobs/${encodeURIComponent(jobId)}/events/stream`,
        { headers: headers(extra), signal });
      if (!response.ok) return check(response);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (!event) continue;
          if (event.id) lastId = event.id;
          if (event.event === "progress" && TERMINAL.has(event.data.status)) finished = true;
          onEvent(event);
        }
      }
    } catch (error) {
      if (signal.aborted || error instanceof ApiError) throw error;
    }
    if (!finished && !signal.aborted) await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * 2 ** attempt, 10000)));
  }
}

export const isTerminal = (status) => TERMINAL.has(status);

// GET /v1/models lists each lineage followed by its servable versions; the lineages alone.
export const lineagesOf = (listing) => listing.data.filter((entry) => entry.object === "model");

// POST /v1/chat/completions with stream: true; calls onText with each piece of the first choice's text.
export async function streamChat(body, onText, signal) {
  const response = await fetch("/v1/chat/completions", { method: "POST", signal,
    headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify({ ...body, stream: true }) });
  if (!response.ok) return check(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const data = buffer.slice(0, end).replace(/^data: ?/, "");
      buffer = buffer.slice(end + 2);
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(503, chunk);
      const text = chunk.choices?.[0]?.delta?.content;
      if (text) onText(text);
    }
  }
}
