// The Blend view: a card per planned source from the moment the request starts (grouped by
// layer for `moa`), each settled by its `source` event and filled with its answer from
// `done.sources`; then the synthesis streaming in, and what the strategy adds (council
// points, best_of's pick, vote's tally, a degraded warning) with the usage at the end.

import { Card, bulletList, callMeta, el, region, usageSummary } from "./cards.js";

/** The sources a blend will call, layer by layer, derived from the request alone. */
export function plannedLayers(request) {
  const models = request.models ?? [];
  const sampled =
    request.strategy === "self_moa" || (request.strategy === "vote" && models.length === 1);
  const first = sampled
    ? Array.from({ length: request.samples ?? 4 }, (_, sample) => ({ model: models[0], sample }))
    : models.map((model) => ({ model, sample: null }));
  const layers = request.strategy === "moa" ? request.layers ?? 1 : 0;
  return Array.from({ length: layers + 1 }, (_, layer) => first.map((p) => ({ ...p, layer })));
}

function title(model, sample) {
  return sample === null || sample === undefined ? model : `${model} #${sample + 1}`;
}

export class BlendView {
  constructor(out, request) {
    out.replaceChildren();
    this.out = out;
    this.cards = [];
    this.layers = [];
    const sources = region(out, "Sources");
    const plan = plannedLayers(request);
    plan.forEach((layer, n) => {
      const holder = plan.length > 1 ? region(sources, `Layer ${n}`, "layer") : sources;
      const note = el("p", "meta", n === 0 ? "answering" : "waits for the layer before");
      const grid = el("div", "grid");
      holder.append(note, grid);
      this.layers.push({ note, grid, size: layer.length });
      for (const { model, sample } of layer) {
        const card = new Card(grid, title(model, sample));
        Object.assign(card, { model, sample, layer: n, filled: false });
        if (n === 0) card.set("running");
        this.cards.push(card);
      }
    });
    const answer = region(out, "Answer", "answer");
    const voted = request.strategy === "vote"; // no synthesizer: the most common answer wins
    this.answer = new Card(answer, voted ? "Winning answer" : "Synthesis", "waits for the sources");
    this.extras = el("div", "extras");
    answer.append(this.extras);
  }

  /** The card an event or a result is about: by sample, else by model, else any open one. */
  find({ layer, model, sample }, usable = (card) => card.open) {
    const group = this.cards.filter((card) => card.layer === layer && usable(card));
    const card =
      group.find((c) => sample !== null && sample !== undefined && c.sample === sample) ??
      group.find((c) => c.model === model) ??
      group[0];
    if (card) return card;
    const extra = new Card(this.layers[Math.max(0, layer)]?.grid ?? this.out, title(model, sample));
    Object.assign(extra, { model, sample, layer, filled: false });
    this.cards.push(extra);
    return extra;
  }

  event(ev) {
    if (ev.event === "source") {
      const card = this.find(ev);
      card.set(ev.status, ev.status === "complete" ? callMeta(ev) : ev.error ?? ev.status);
    } else if (ev.event === "route") {
      const card = ev.layer < 0 ? this.answer : this.find({ ...ev, model: ev.source });
      const detail = ev.error ? `: ${ev.error}` : "";
      card.meta.textContent = `attempt ${ev.attempt}: ${ev.model} ${ev.status}${detail}`;
    } else if (ev.event === "layer") {
      this.layerDone(ev);
    } else if (ev.event === "synthesis") {
      this.answer.set("running", `${ev.strategy} · synthesized by ${ev.model}`);
    } else if (ev.event === "chunk") {
      if (this.answer.state !== "streaming") this.answer.set("streaming");
      this.answer.append(ev.content);
    } else if (ev.event === "done") {
      this.done(ev);
    }
  }

  layerDone({ layer, successes }) {
    const current = this.layers[layer];
    if (current) current.note.textContent = `${successes} of ${current.size} answered`;
    const next = this.cards.filter((card) => card.layer === layer + 1 && card.open);
    for (const card of next) card.set(successes ? "running" : "stopped");
  }

  done(answer) {
    for (const source of answer.sources ?? []) {
      const card = this.find(source, (c) => !c.filled);
      card.filled = true;
      if (source.status === "ok") card.show(source.content);
    }
    this.settleAll("stopped");
    const picked = this.cards.find((c) => c.model === answer.best_of_pick && c.state === "complete");
    picked?.mark("picked", "good");
    if (!this.answer.text && answer.council) this.answer.show(answer.council.final_answer);
    this.answer.set("complete");
    if (answer.early_stopped) this.answer.mark("early stop", "warn");
    if (answer.degraded) this.degraded(answer.degraded_sources ?? []);
    if (answer.council) this.council(answer.council);
    if (answer.vote) this.vote(answer.vote);
    usageSummary(this.extras, answer);
  }

  fail(error) {
    this.settleAll("stopped");
    if (this.answer.open) this.answer.set("stopped", error.message);
  }

  /** Cards still open when the run ends were never run; each layer says how many answered. */
  settleAll(state) {
    for (const card of this.cards) if (card.open) card.set(state);
    this.layers.forEach((layer, n) => {
      const answered = this.cards.filter((c) => c.layer === n && c.state === "complete").length;
      layer.note.textContent = `${answered} of ${layer.size} answered`;
    });
  }

  degraded(sources) {
    this.answer.mark("degraded", "warn");
    const box = el("div", "warning");
    box.setAttribute("role", "note");
    box.append(el("p", null, `Degraded answer: ${sources.length} source(s) did not answer.`));
    const list = el("ul");
    for (const s of sources) {
      const where = `${title(s.model, s.sample)}, layer ${s.layer ?? 0}`;
      list.append(el("li", null, `${where}: ${s.status}${s.error ? ` (${s.error})` : ""}`));
    }
    box.append(list);
    this.extras.append(box);
  }

  council(council) {
    const box = region(this.extras, "Council", "council");
    if (council.structured === false) {
      box.append(el("p", "muted", "The synthesizer gave no structured verdict; its text is above."));
    }
    for (const [name, items] of [
      ["Agreements", council.agreement_points],
      ["Disagreements", council.disagreement_points],
      ["Follow-up questions", council.follow_up_questions],
    ]) {
      const part = el("div");
      part.append(el("h4", null, name));
      bulletList(part, items);
      box.append(part);
    }
  }

  vote(vote) {
    const box = region(this.extras, "Vote", "vote");
    const share = vote.agreement <= 1 ? `${Math.round(vote.agreement * 100)}%` : vote.agreement;
    box.append(el("p", null, `Winning answer: ${vote.answer} · agreement ${share}`));
    const table = el("table", "tally");
    const head = el("tr");
    head.append(el("th", null, "Answer"), el("th", null, "Votes"));
    table.append(head);
    const rows = Object.entries(vote.votes ?? {}).sort((a, b) => b[1] - a[1]);
    for (const [answer, count] of rows) {
      const row = el("tr", answer === vote.answer ? "winner" : "");
      row.append(el("td", null, answer), el("td", null, count));
      table.append(row);
    }
    box.append(table);
  }
}
