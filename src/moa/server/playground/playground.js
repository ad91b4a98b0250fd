// The playground: three modes as tabs sharing the API key, the Models field (with a picker
// filled from GET /api/v1/models) and the prompt. Each run streams into its mode's view,
// can be cancelled, ends in a clear message whatever happens, and lands in the history.

import { RunError, getJson, streamEvents } from "./api.js";
import { BlendView } from "./blend.js";
import { el } from "./cards.js";
import { clearHistory, loadHistory, remember } from "./history.js";
import { CompareView, JudgeView } from "./modes.js";

const $ = (id) => document.getElementById(id);
const MODES = {
  blend: { name: "Blend", path: "/api/v1/blend", verb: "Blending" },
  compare: { name: "Compare", path: "/api/v1/compare", verb: "Comparing" },
  judge: { name: "Judge", path: "/api/v1/judge", verb: "Judging" },
};
const running = new Map(); // mode -> its AbortController
const tabs = [...document.querySelectorAll('[role="tab"]')];
let catalogue = [];
let strategyChosen = false;
let modelsTyped = false;

const key = () => $("key").value.trim();
const modelList = () =>
  $("models").value.split(",").map((m) => m.trim()).filter(Boolean);

// ---- modes as tabs ------------------------------------------------------------------

function selectTab(mode, focus = false) {
  for (const tab of tabs) {
    const selected = tab.dataset.mode === mode;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !selected;
    if (selected && focus) tab.focus();
  }
}

const activeMode = () => tabs.find((t) => t.getAttribute("aria-selected") === "true").dataset.mode;

function onTabKey(event) {
  const index = tabs.findIndex((t) => t.dataset.mode === activeMode());
  const moves = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: tabs.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  selectTab(tabs[(moves[event.key] + tabs.length) % tabs.length].dataset.mode, true);
}

function showStrategyControls() {
  const strategy = $("strategy").value;
  for (const field of document.querySelectorAll("[data-strategies]")) {
    field.hidden = !field.dataset.strategies.split(" ").includes(strategy);
  }
}

// ---- the catalogue and the model picker -----------------------------------------------

async function loadCatalogue() {
  const note = $("picker-note");
  note.classList.remove("error-text");
  if (!key()) {
    note.textContent = "Enter an API key to load the catalogue.";
    return;
  }
  note.textContent = "Loading the catalogue…";
  try {
    const data = await getJson("/api/v1/models", key());
    catalogue = data.models ?? [];
    fillStrategies(data.strategies ?? [], data.defaults?.strategy);
    fillDefaultModels(data.defaults?.models ?? []);
    renderPicker();
    note.textContent = `${catalogue.length} models. Click one to add or remove it.`;
  } catch (error) {
    note.textContent = `Could not load the catalogue: ${error.message}`;
    note.classList.add("error-text");
  }
}

/** The server's default models, unless the user has begun to name models themselves;
 * selected when the field has focus, so what the user types next replaces them. */
function fillDefaultModels(models) {
  const field = $("models");
  if (field.value.trim() || modelsTyped) return;
  field.value = models.join(", ");
  if (document.activeElement === field) field.select();
}

function fillStrategies(strategies, fallback) {
  if (!strategies.length) return;
  const select = $("strategy");
  const chosen = strategyChosen ? select.value : fallback ?? select.value;
  select.replaceChildren(...strategies.map((name) => el("option", null, name)));
  select.value = strategies.includes(chosen) ? chosen : strategies[0];
  showStrategyControls();
}

function modelNote(model) {
  if (!model.ready) return `needs ${model.needs}`;
  const [input, output] = [model.input_usd_per_mtok ?? 0, model.output_usd_per_mtok ?? 0];
  return input || output ? `$${input} in · $${output} out per M tokens` : "no price set";
}

function renderPicker() {
  const chosen = new Set(modelList());
  const items = catalogue.map((model) => {
    const button = el("button", "chip");
    button.type = "button";
    button.disabled = !model.ready;
    button.setAttribute("aria-pressed", String(chosen.has(model.id)));
    button.append(el("span", "chip-id", model.id), el("span", "chip-note", modelNote(model)));
    button.addEventListener("click", () => toggleModel(model.id));
    const item = el("li");
    item.append(button);
    return item;
  });
  $("catalogue").replaceChildren(...items);
  $("model-ids").replaceChildren(...catalogue.map((m) => Object.assign(el("option"), { value: m.id })));
}

function toggleModel(id) {
  const models = modelList();
  $("models").value = (models.includes(id) ? models.filter((m) => m !== id) : [...models, id]).join(", ");
  renderPicker();
}

/** The Judge field's model if it is not a contestant, else a ready catalogued model that
 * is not one, preferably of a contestant's provider (the one most likely to be usable). */
function suggestJudge(models) {
  const current = $("judge").value.trim();
  if (current && !models.includes(current)) return current;
  const providers = new Set(models.map((m) => m.split("/")[0]));
  const ready = catalogue.filter((m) => m.ready && !models.includes(m.id));
  return (ready.find((m) => providers.has(m.id.split("/")[0])) ?? ready[0])?.id ?? "";
}

// ---- running a mode -----------------------------------------------------------------

function requestFor(mode) {
  const messages = [{ role: "user", content: $("prompt").value }];
  const models = modelList();
  if (mode === "compare") return { models, messages, stream: true };
  if (mode === "judge") return { contestants: models, judge: $("judge").value.trim(), messages, stream: true };
  const strategy = $("strategy").value;
  const request = { models, strategy, messages, stream: true };
  if ($("synthesizer").value.trim() && strategy !== "vote") request.synthesizer = $("synthesizer").value.trim();
  if (strategy === "moa") request.layers = Number($("layers").value);
  if (strategy === "self_moa" || strategy === "vote") request.samples = Number($("samples").value);
  return request;
}

function missing(request) {
  if (!key()) return "Enter an API key first (moa keys create makes one).";
  if (!(request.models ?? request.contestants).length) return "Name at least one model in Models.";
  if (!request.messages[0].content.trim()) return "Write a prompt first.";
  if ("judge" in request && !request.judge) return "Name a judge model that is not a contestant.";
  return null;
}

function viewFor(mode, request) {
  const out = $(`${mode}-out`);
  if (mode === "compare") return new CompareView(out, request, { judge: judgeThese, suggestJudge });
  return mode === "judge" ? new JudgeView(out, request) : new BlendView(out, request);
}

function report(mode, error, status = "") {
  const alert = $(`${mode}-error`);
  alert.hidden = !error;
  alert.replaceChildren(...(error ? [el("strong", null, error.code), ` ${error.message}`] : []));
  $(`${mode}-status`).textContent = status;
}

function setRunning(mode, controller) {
  if (controller) running.set(mode, controller);
  else running.delete(mode);
  document.querySelector(`#panel-${mode} .run`).disabled = Boolean(controller);
  $(`${mode}-cancel`).hidden = !controller;
}

function showFailure(mode, view, error, events) {
  view.fail(error);
  // Refused before anything ran (a bad key, bad input, no server): no cards to show.
  if (!events.length && error.code !== "cancelled") $(`${mode}-out`).replaceChildren();
  report(mode, error);
}

async function run(mode) {
  if (running.has(mode)) return;
  const request = requestFor(mode);
  const problem = missing(request);
  if (problem) {
    report(mode, new RunError("invalid_request", problem));
    return;
  }
  sessionStorage.setItem("moa-key", key());
  const view = viewFor(mode, request);
  const record = { mode, request, events: [], at: Date.now(), error: null };
  const controller = new AbortController();
  setRunning(mode, controller);
  report(mode, null, `${MODES[mode].verb}… (Cancel stops it)`);
  try {
    const onEvent = (event) => {
      record.events.push(event);
      view.event(event);
    };
    await streamEvents(MODES[mode].path, request, { key: key(), signal: controller.signal, onEvent });
    report(mode, null, "Done.");
  } catch (error) {
    const failure = error instanceof RunError ? error : new RunError("page_error", String(error));
    record.error = { code: failure.code, message: failure.message };
    showFailure(mode, view, failure, record.events);
    if (!(error instanceof RunError)) throw error; // a bug in this page: let it show
  } finally {
    setRunning(mode, null);
    remember(record);
    renderHistory();
  }
}

function judgeThese(models, judge) {
  $("models").value = models.join(", ");
  $("judge").value = judge;
  renderPicker();
  selectTab("judge");
  run("judge");
}

// ---- history ------------------------------------------------------------------------

function renderHistory() {
  const runs = loadHistory();
  $("history-empty").hidden = runs.length > 0;
  $("clear-history").hidden = runs.length === 0;
  $("history").replaceChildren(
    ...runs.map((past) => {
      const what = past.mode === "blend" ? `Blend · ${past.request.strategy}` : MODES[past.mode].name;
      const button = el("button", "history-item");
      button.type = "button";
      button.append(
        el("span", "history-what", `${what} · ${past.error ? past.error.code : "done"}`),
        el("span", "history-prompt", past.request.messages?.[0]?.content.slice(0, 80)),
        el("time", "history-when", new Date(past.at).toLocaleString()),
      );
      button.addEventListener("click", () => reopen(past));
      const item = el("li");
      item.append(button);
      return item;
    }),
  );
}

function reopen(past) {
  const { mode, request } = past;
  selectTab(mode);
  $("prompt").value = request.messages?.[0]?.content ?? "";
  $("models").value = (request.models ?? request.contestants ?? []).join(", ");
  if (mode === "judge") $("judge").value = request.judge;
  if (mode === "blend") {
    $("strategy").value = request.strategy;
    $("synthesizer").value = request.synthesizer ?? "";
    if (request.layers) $("layers").value = request.layers;
    if (request.samples) $("samples").value = request.samples;
    showStrategyControls();
  }
  renderPicker();
  const view = viewFor(mode, request);
  for (const event of past.events) view.event(event);
  if (past.error) showFailure(mode, view, past.error, past.events);
  else report(mode, null, `Re-opened a run from ${new Date(past.at).toLocaleString()}.`);
}

// ---- wiring -------------------------------------------------------------------------

for (const tab of tabs) tab.addEventListener("click", () => selectTab(tab.dataset.mode));
$("modes").addEventListener("keydown", onTabKey);
for (const mode of Object.keys(MODES)) {
  document.querySelector(`#panel-${mode} .run`).addEventListener("click", () => run(mode));
  $(`${mode}-cancel`).addEventListener("click", () => running.get(mode)?.abort());
}
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    event.preventDefault();
    run(activeMode());
  } else if (event.key === "Escape") {
    running.get(activeMode())?.abort();
  }
});
$("key").value = sessionStorage.getItem("moa-key") ?? "";
$("key").addEventListener("change", () => {
  sessionStorage.setItem("moa-key", key());
  loadCatalogue();
});
$("models").addEventListener("input", () => {
  modelsTyped = true;
  renderPicker();
});
$("strategy").addEventListener("change", () => {
  strategyChosen = true;
  showStrategyControls();
});
$("clear-history").addEventListener("click", () => {
  clearHistory();
  renderHistory();
});
showStrategyControls();
renderHistory();
loadCatalogue();
