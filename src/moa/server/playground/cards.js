// The pieces every mode's view is made of: a card per model call (its state, its meta line,
// its answer rendered as safe markdown) and the usage summary at the end of a run.

import { renderMarkdown } from "./markdown.js";

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** A titled region: a <section> with an accessible name and a heading. */
export function region(parent, title, className = "") {
  const node = el("section", `region ${className}`);
  node.setAttribute("aria-label", title);
  node.append(el("h3", "region-title", title));
  parent.append(node);
  return node;
}

const STATES = {
  waiting: "waiting",
  running: "running",
  streaming: "streaming",
  complete: "done",
  failed: "failed",
  skipped: "skipped",
  cut: "cut",
  stopped: "not run",
};
const OPEN = new Set(["waiting", "running", "streaming"]);

export class Card {
  constructor(parent, title, meta = "") {
    this.node = el("article", "card");
    this.node.setAttribute("aria-label", title);
    const head = el("header");
    this.badges = el("span", "badges");
    this.badge = el("span", "badge state");
    this.badges.append(this.badge);
    head.append(el("h4", "card-title", title), this.badges);
    this.meta = el("p", "meta", meta);
    this.body = el("div", "md");
    this.node.append(head, this.meta, this.body);
    parent.append(this.node);
    this.text = "";
    this.timer = null;
    this.set("waiting");
  }

  get open() {
    return OPEN.has(this.state);
  }

  set(state, meta) {
    this.state = state;
    this.node.dataset.state = state;
    this.badge.textContent = STATES[state] ?? state;
    if (meta !== undefined) this.meta.textContent = meta;
  }

  /** A badge beside the state: `kind` is good, info or warn. */
  mark(label, kind = "info") {
    this.badges.append(el("span", `badge ${kind}`, label));
  }

  append(text) {
    this.text += text;
    this.render();
  }

  show(text) {
    this.text = text ?? "";
    this.render();
  }

  /** Re-render at most every 50 ms while text streams in. */
  render() {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.body.replaceChildren(renderMarkdown(this.text));
    }, 50);
  }
}

export function callMeta(event) {
  return `${event.tokens ?? 0} tokens · ${event.latency_ms ?? 0} ms`;
}

/** Calls, tokens, cost, credits and latency: the same footer for every mode. */
export function usageSummary(parent, answer) {
  const usage = answer.usage ?? {};
  const credits = `${answer.credits_charged ?? 0} charged · ${answer.credits_remaining ?? "?"} left`;
  const rows = [
    ["Calls", usage.calls ?? 0],
    ["Tokens", `${usage.prompt_tokens ?? 0} in · ${usage.completion_tokens ?? 0} out`],
    ["Cost", `$${Number(usage.cost_usd ?? 0).toFixed(6)}`],
    ["Credits", credits],
    ["Latency", `${answer.latency_ms ?? 0} ms`],
  ];
  const list = el("dl", "summary");
  list.setAttribute("aria-label", "Usage");
  for (const [name, value] of rows) {
    const item = el("div");
    item.append(el("dt", null, name), el("dd", null, value));
    list.append(item);
  }
  parent.append(list);
}

export function bulletList(parent, items) {
  if (!items?.length) {
    parent.append(el("p", "muted", "none"));
    return;
  }
  const list = el("ul");
  for (const item of items) {
    const entry = el("li");
    entry.append(renderMarkdown(item));
    list.append(entry);
  }
  parent.append(list);
}
