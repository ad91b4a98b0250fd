// A short history of runs in localStorage: each run's request and the events that settled
// it (streamed text folded into one event per model), so a run re-opens as it ended.

const KEY = "moa-history";
const LIMIT = 20;

export function loadHistory() {
  try {
    const runs = JSON.parse(localStorage.getItem(KEY) ?? "[]");
    return Array.isArray(runs) ? runs : [];
  } catch {
    return [];
  }
}

export function remember(run) {
  const runs = [compact(run), ...loadHistory()].slice(0, LIMIT);
  while (runs.length) {
    try {
      localStorage.setItem(KEY, JSON.stringify(runs));
      return;
    } catch {
      runs.pop(); // over the storage quota: forget the oldest run and try again
    }
  }
}

export function clearHistory() {
  localStorage.removeItem(KEY);
}

function compact(run) {
  const kept = [];
  const streamed = new Map();
  for (const event of run.events) {
    if (event.event === "chunk" || event.event === "delta") {
      const key = event.model ?? "";
      const folded = streamed.get(key) ?? { ...event, content: "" };
      folded.content += event.content;
      streamed.set(key, folded);
    } else {
      kept.push(event);
    }
  }
  const done = kept.filter((event) => event.event === "done");
  const events = [...kept.filter((event) => event.event !== "done"), ...streamed.values(), ...done];
  return { ...run, events };
}
