// Upload a dataset and start a job; errors are the API's own validation messages.

import { api, lineagesOf } from "./api.js";
import { fill, h } from "./dom.js";

function field(id, label, input, hint) {
  input.id = id;
  return h("div", {}, h("label", { for: id }, label), input, hint ? h("small", { class: "muted" }, hint) : null);
}

function fileOption(file) {
  return h("option", { value: file.id }, `${file.filename} (${file.id}, ${file.lines ?? "?"} lines)`);
}

export async function newJobPage(main, _params, signal) {
  const [listing, files, capabilities] = await Promise.all([api("/v1/models", { signal }),
    api("/v1/files?purpose=fine-tune&limit=100", { signal }), api("/v1/capabilities", { signal })]);
  const models = { data: lineagesOf(listing) };

  const uploadError = h("p", { class: "error", role: "alert", id: "upload-error" });
  const uploaded = h("p", { class: "notice", role: "status", id: "upload-status" });
  const fileInput = h("input", { type: "file", name: "file", accept: ".jsonl,application/jsonl", required: true });
  const uploadButton = h("button", { type: "submit" }, "Upload");
  const trainingFile = h("select", { name: "training_file", required: true },
    h("option", { value: "" }, "Choose a dataset…"), files.data.map(fileOption));
  // The held-out set the accuracy matrix scores the task on; none: the job holds out 10% of the training file.
  const validationFile = h("select", { name: "validation_file" },
    h("option", { value: "" }, "None: hold out 10% of the training file"), files.data.map(fileOption));

  const upload = async (event) => {
    event.preventDefault();
    fill(uploadError);
    fill(uploaded);
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", fileInput.files[0]);
    uploadButton.disabled = true;
    try {
      const file = await api("/v1/files", { method: "POST", form });
      trainingFile.append(fileOption(file));
      validationFile.append(fileOption(file));
      trainingFile.value = file.id;
      fill(uploaded, `Uploaded ${file.filename} as ${file.id}: ${file.lines} records, valid.`);
    } catch (e) {
      fill(uploadError, e.message);
    } finally {
      uploadButton.disabled = false;
    }
  };

  const model = h("select", { name: "model", required: true }, models.data.map((m) =>
    h("option", { value: m.id }, `${m.id} (head v${m.head})`)));
  const task = h("input", { name: "task", required: true, maxlength: "128", pattern: "[a-zA-Z0-9][a-zA-Z0-9._\\-]*",
    placeholder: "e.g. refunds" });
  // The server's strategies (plug-ins), with its default chosen.
  const strategy = h("select", { name: "strategy" }, capabilities.strategies.map((s) =>
    h("option", { value: s.name, title: s.description, selected: s.name === capabilities.default_strategy }, s.name)));
  const epochs = h("input", { name: "n_epochs", type: "number", min: "1", max: "100", placeholder: "auto" });
  const batch = h("input", { name: "batch_size", type: "number", min: "1", max: "1024", placeholder: "auto" });
  const rate = h("input", { name: "learning_rate", type: "number", step: "any", min: "0", placeholder: "default" });
  const replay = h("input", { name: "replay", type: "number", min: "0", max: "1000", placeholder: "0",
    title: "Records of each earlier task to train on again (rehearsal)" });
  const jobError = h("p", { class: "error", role: "alert", id: "job-error" });

  const start = async (event) => {
    event.preventDefault();
    fill(jobError);
    const hyperparameters = {};
    if (epochs.value) hyperparameters.n_epochs = Number(epochs.value);
    if (batch.value) hyperparameters.batch_size = Number(batch.value);
    const continual = { task: task.value, strategy: strategy.value };
    if (rate.value) continual.learning_rate = Number(rate.value);
    if (replay.value) continual.replay = Number(replay.value);
    const body = { model: model.value, training_file: trainingFile.value, hyperparameters, continual };
    if (validationFile.value) body.validation_file = validationFile.value;
    try {
      const job = await api("/v1/fine_tuning/jobs", { method: "POST", body });
      location.hash = `#/jobs/${job.id}`;
    } catch (e) {
      fill(jobError, e.param ? `${e.message} (${e.param})` : e.message);
    }
  };

  fill(main, h("h1", {}, "Start a fine-tuning job"),
    h("div", { class: "grid" },
      h("form", { class: "card", onsubmit: upload, "aria-labelledby": "upload-title" },
        h("h2", { id: "upload-title" }, "1. Upload a dataset"),
        h("p", { class: "muted" }, "JSONL, one record a line: {\"prompt\", \"completion\"} or {\"messages\": [...]}. The server checks every line."),
        field("dataset-file", "Dataset file", fileInput),
        h("div", { class: "actions" }, uploadButton), uploadError, uploaded),
      h("form", { class: "card", onsubmit: start, "aria-labelledby": "job-title" },
        h("h2", { id: "job-title" }, "2. Train"),
        models.data.length ? null : h("p", { class: "error" }, "No model lineage yet: register one first (sculpt models create)."),
        h("div", { class: "form-grid" },
          field("job-model", "Model lineage", model), field("job-file", "Training dataset", trainingFile),
          field("job-validation", "Held-out set", validationFile,
            "What the accuracy matrix scores this task on; must share no record with the training dataset"),
          field("job-task", "Task name", task), field("job-strategy", "Strategy", strategy),
          field("job-epochs", "Epochs", epochs), field("job-batch", "Batch size", batch),
          field("job-lr", "Learning rate", rate), field("job-replay", "Replay per earlier task", replay)),
        h("div", { class: "actions" }, h("button", { type: "submit" }, "Start job")), jobError)));
}
