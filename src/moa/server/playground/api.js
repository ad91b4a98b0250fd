// Talking to moa: one JSON GET and one streaming POST. Every way a request can end badly
// (an HTTP error, an error event, a network error, a server that went away mid-answer, a
// cancel) becomes a RunError with a code and a sentence a user can act on.

export class RunError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const HINTS = {
  unauthorized: "Check the API key (moa keys create makes one).",
  insufficient_credits: "Top up the key's credits.",
};

function headers(key) {
  return { "Content-Type": "application/json", Authorization: `Bearer ${key}` };
}

export async function getJson(path, key) {
  const response = await send(path, { headers: headers(key) });
  if (!response.ok) throw await httpError(response);
  return response.json();
}

/** POST `body` with `stream: true`; call `onEvent` for each event up to `done`. */
export async function streamEvents(path, body, { key, signal, onEvent }) {
  const init = { method: "POST", headers: headers(key), body: JSON.stringify(body), signal };
  const response = await send(path, init);
  if (!response.ok) throw await httpError(response);
  let finished = false;
  for await (const data of frames(response.body)) {
    if (data === "[DONE]") break;
    const event = parse(data);
    if (event.event === "error") throw new RunError(event.code, event.message);
    onEvent(event);
    finished ||= event.event === "done";
  }
  if (!finished) throw lost(null);
}

async function send(path, init) {
  try {
    return await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw cancelled();
    throw new RunError(
      "network_error",
      "Could not reach the moa server (network error). Is it running, and is this page served by it?",
    );
  }
}

/** The `data:` payloads of a Server-Sent Events body; comment lines are skipped. */
async function* frames(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (error) {
      throw lost(error);
    }
    const { value, done } = chunk;
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of frame.split("\n")) {
        if (line.startsWith("data: ")) yield line.slice(6);
      }
    }
  }
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch {
    throw new RunError("bad_stream", "The server sent an event this page could not read.");
  }
}

function cancelled() {
  return new RunError("cancelled", "Cancelled. The server stops the models' calls and settles the request.");
}

function lost(error) {
  if (error?.name === "AbortError") return cancelled();
  return new RunError(
    "connection_lost",
    "The connection to the moa server was lost before the answer was complete. Did the server stop?",
  );
}

async function httpError(response) {
  let code = `http_${response.status}`;
  let message = `The server answered ${response.status} ${response.statusText}.`;
  try {
    const body = await response.json();
    if (body?.error?.message) ({ code, message } = body.error);
  } catch {
    // not JSON (a proxy's page, say): keep the status line
  }
  if (!/[.!?]$/.test(message)) message += ".";
  const retry = response.headers.get("Retry-After");
  if (retry) message += ` Retry after ${retry} s.`;
  if (HINTS[code]) message += ` ${HINTS[code]}`;
  return new RunError(code, message);
}
