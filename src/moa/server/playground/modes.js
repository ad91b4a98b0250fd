// The Compare view (a column per model, streaming side by side, fastest and longest marked,
// then "Judge these") and the Judge view (contestants, the judge's scores, ranks, winner).

import { Card, callMeta, el, region, usageSummary } from "./cards.js";

function columns(out, models, name) {
  const grid = el("div", "grid");
  region(out, name).append(grid);
  const cards = new Map();
  for (const model of models) {
    if (!cards.has(model)) cards.set(model, new Card(grid, model));
    cards.get(model).set("running");
  }
  return cards;
}

function settle(card, ev) {
  if (card) card.set(ev.status, ev.status === "complete" ? callMeta(ev) : ev.error ?? ev.status);
}

export class CompareView {
  /** `judge(models, judgeModel)` runs Judge; `suggestJudge(models)` proposes a judge. */
  constructor(out, request, { judge, suggestJudge }) {
    out.replaceChildren();
    this.out = out;
    this.judge = judge;
    this.suggestJudge = suggestJudge;
    this.cards = columns(out, request.models ?? [], "Answers");
  }

  event(ev) {
    const card = this.cards.get(ev.model);
    if (ev.event === "delta" && card) {
      if (card.state === "running") card.set("streaming");
      card.append(ev.content);
    } else if (ev.event === "source") {
      settle(card, ev);
    } else if (ev.event === "done") {
      this.done(ev);
    }
  }

  done(answer) {
    for (const result of answer.results ?? []) {
      const card = this.cards.get(result.model);
      if (!card) continue;
      if (result.status === "ok") {
        const first = result.first_token_ms === null ? "" : ` · first token ${result.first_token_ms} ms`;
        const tokens = result.usage?.completion_tokens ?? 0;
        card.set("complete", `${tokens} tokens · ${result.latency_ms} ms${first}`);
        card.show(result.content);
      } else {
        card.set("failed", result.error);
      }
    }
    this.cards.get(answer.fastest)?.mark("fastest", "good");
    this.cards.get(answer.longest)?.mark("longest");
    usageSummary(this.out, answer);
    const answered = (answer.results ?? []).filter((r) => r.status === "ok").map((r) => r.model);
    this.offerJudging(answered);
  }

  offerJudging(models) {
    const bar = el("div", "judge-these");
    const label = el("label", null, "Judged by");
    label.htmlFor = "judged-by";
    const input = el("input");
    Object.assign(input, { id: "judged-by", value: this.suggestJudge(models), spellcheck: false });
    input.setAttribute("list", "model-ids");
    const button = el("button", "secondary", "Judge these");
    button.type = "button";
    button.addEventListener("click", () => this.judge(models, input.value.trim()));
    bar.append(label, input, button);
    this.out.append(bar);
  }

  fail() {
    for (const card of this.cards.values()) if (card.open) card.set("stopped");
  }
}

export class JudgeView {
  constructor(out, request) {
    out.replaceChildren();
    this.out = out;
    this.cards = columns(out, request.contestants ?? [], "Contestants");
    this.pending = this.cards.size;
    this.verdict = region(out, "Verdict", "verdict");
    this.status = el("p", "meta", `${request.judge} scores the answers once they are in.`);
    this.verdict.append(this.status);
  }

  event(ev) {
    if (ev.event === "source") {
      settle(this.cards.get(ev.model), ev);
      this.pending -= 1;
      if (this.pending === 0) this.status.textContent = "judging…";
    } else if (ev.event === "done") {
      this.done(ev);
    }
  }

  done(answer) {
    for (const result of answer.answers ?? []) {
      if (result.status === "ok") this.cards.get(result.model)?.show(result.content);
    }
    const verdict = answer.verdict;
    const winner = verdict.scores.find((s) => s.model === verdict.winner);
    this.status.textContent = `Judged by ${answer.judge}.`;
    const callout = el("div", "winner");
    callout.append(
      el("p", "winner-name", `Winner: ${verdict.winner} (${winner?.score ?? "?"}/10)`),
      el("p", null, winner?.reason || "The judge gave no reason."),
    );
    this.verdict.append(callout);
    if (verdict.summary) this.verdict.append(el("p", null, verdict.summary));
    this.verdict.append(this.scoreTable(verdict));
    for (const score of verdict.scores) {
      const card = this.cards.get(score.model);
      card?.mark(`${score.score}/10`);
      card?.mark(`rank ${score.rank}`);
      if (score.model === verdict.winner) card?.mark("winner", "good");
    }
    usageSummary(this.out, answer);
  }

  scoreTable(verdict) {
    const table = el("table", "scores");
    const head = el("tr");
    for (const name of ["Rank", "Model", "Score", "Reason"]) head.append(el("th", null, name));
    table.append(head);
    for (const s of [...verdict.scores].sort((a, b) => a.rank - b.rank)) {
      const row = el("tr", s.model === verdict.winner ? "winner" : "");
      row.append(el("td", null, s.rank), el("td", null, s.model));
      row.append(el("td", null, `${s.score}/10`), el("td", null, s.reason));
      table.append(row);
    }
    return table;
  }

  fail(error) {
    for (const card of this.cards.values()) if (card.open) card.set("stopped");
    this.status.textContent = error.message;
  }
}
