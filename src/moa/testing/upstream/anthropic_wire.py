"""Anthropic Messages: ``POST /v1/messages``, JSON or SSE with Anthropic's event types.

Requests are checked as Anthropic checks them: ``max_tokens`` is required, ``temperature``
and ``top_p`` are 0..1 and not both set (current models refuse that). A forced tool call
(``tool_choice: {"type": "tool"}``) answers with a ``tool_use`` block whose input is the
scripted text parsed as a JSON object (or ``{"text": ...}`` when it is not one), streamed as
``input_json_delta``s. A safety block finishes with ``stop_reason: refusal`` and no text.
"""

from __future__ import annotations

import json
from typing import Any

from moa.testing.upstream.script import RecordedRequest, text_of
from moa.testing.upstream.wire import Reply, Wire, count, dumps, number

_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_STOP = {"stop": "end_turn", "length": "max_tokens", "blocked": "refusal"}


class AnthropicWire(Wire):
    name = "anthropic"
    id_prefix = "msg_"

    def parse(
        self, payload: dict[str, Any], headers: dict[str, str], target: str
    ) -> RecordedRequest:
        if not isinstance(payload.get("model"), str):
            raise ValueError("model: Field required")
        max_tokens = count(payload, "max_tokens")
        if max_tokens is None:
            raise ValueError("max_tokens: Field required")
        temperature = number(payload, "temperature", 0, 1)
        if temperature is not None and number(payload, "top_p", 0, 1) is not None:
            raise ValueError("`temperature` and `top_p` cannot both be specified for this model")
        return RecordedRequest(
            model=payload["model"],
            messages=_system(payload.get("system")) + _turns(payload.get("messages")),
            temperature=temperature,
            max_tokens=max_tokens,
            stream=bool(payload.get("stream")),
            headers=headers,
            body=payload,
            protocol="anthropic",
        )

    def error(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def stream_error(self, message: str) -> dict[str, Any]:
        return self.error(529, message, None)

    def answer_text(self, record: RecordedRequest, text: str) -> str:
        if _forced_tool(record) is None:
            return text
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        return json.dumps(value if isinstance(value, dict) else {"text": text})

    def whole(self, reply: Reply) -> dict[str, Any]:
        return self._message(reply, self._blocks(reply)) | {
            "stop_reason": self._stop(reply),
            "usage": self._usage(reply, reply.completion_tokens),
        }

    def head(self, reply: Reply) -> list[dict[str, Any]]:
        start = {"type": "message_start", "message": self._message(reply, [])}
        if reply.blocked:
            return [start]
        block = self._block(reply, "" if _forced_tool(reply.record) is None else None)
        opening = {"type": "content_block_start", "index": 0, "content_block": block}
        return [start, opening, {"type": "ping"}]

    def delta(self, reply: Reply, token: str) -> dict[str, Any]:
        if _forced_tool(reply.record) is None:
            delta = {"type": "text_delta", "text": token}
        else:
            delta = {"type": "input_json_delta", "partial_json": token}
        return {"type": "content_block_delta", "index": 0, "delta": delta}

    def tail(self, reply: Reply) -> list[dict[str, Any]]:
        closing = [] if reply.blocked else [{"type": "content_block_stop", "index": 0}]
        delta = {"stop_reason": self._stop(reply), "stop_sequence": None}
        usage = {"output_tokens": reply.completion_tokens}
        ending = {"type": "message_delta", "delta": delta, "usage": usage}
        return [*closing, ending, {"type": "message_stop"}]

    def frame(self, event: dict[str, Any]) -> bytes:
        return b"event: " + str(event["type"]).encode() + b"\ndata: " + dumps(event) + b"\n\n"

    def _message(self, reply: Reply, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": reply.id,
            "type": "message",
            "role": "assistant",
            "model": reply.record.model,
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(reply, 1),
        }

    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        if reply.blocked:
            return []
        if _forced_tool(reply.record) is None:
            return [self._block(reply, reply.text)]
        try:
            value = json.loads(reply.text)
        except ValueError:  # cut at max_tokens
            value = {}
        return [self._block(reply, value)]

    def _block(self, reply: Reply, value: Any) -> dict[str, Any]:
        """A text block for a string; a forced tool's call for anything else."""
        name = _forced_tool(reply.record)
        if name is None:
            return {"type": "text", "text": value}
        return {"type": "tool_use", "id": f"toolu_{reply.id}", "name": name, "input": value or {}}

    def _stop(self, reply: Reply) -> str:
        if reply.finish == "stop" and _forced_tool(reply.record) is not None:
            return "tool_use"
        return _STOP[reply.finish]

    def _usage(self, reply: Reply, output_tokens: int) -> dict[str, int]:
        return {"input_tokens": reply.prompt_tokens, "output_tokens": output_tokens}


def _forced_tool(record: RecordedRequest) -> str | None:
    """The tool the request forces the model to call, if any."""
    choice = record.body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        return str(choice.get("name"))
    return None


def _system(system: Any) -> list[dict[str, Any]]:
    text = text_of(system)
    return [{"role": "system", "content": text}] if text else []


def _turns(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages: at least one message is required")
    turns = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise ValueError("messages: each message has role user or assistant")
        turns.append({"role": message["role"], "content": text_of(message.get("content"))})
    return turns
