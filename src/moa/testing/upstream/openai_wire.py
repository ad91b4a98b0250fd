"""OpenAI Chat Completions: ``POST /v1/chat/completions``, JSON or SSE ending in ``[DONE]``.

A safety block (``blocked``) answers with no text and ``finish_reason: content_filter``, as
Azure OpenAI's filters do; a cut at ``max_tokens`` finishes ``length``.
"""

from __future__ import annotations

from typing import Any

from moa.testing.upstream.script import RecordedRequest
from moa.testing.upstream.wire import Reply, Wire

_ERROR_TYPES = {429: "rate_limit_error", 401: "authentication_error", 404: "not_found_error"}
_FINISH = {"stop": "stop", "length": "length", "blocked": "content_filter"}


class OpenAIWire(Wire):
    name = "openai"
    id_prefix = "chatcmpl-"
    done = b"data: [DONE]\n\n"

    def parse(
        self, payload: dict[str, Any], headers: dict[str, str], target: str
    ) -> RecordedRequest:
        if not isinstance(payload.get("model"), str):
            raise ValueError("missing model")
        return RecordedRequest(
            model=payload["model"],
            messages=list(payload.get("messages") or []),
            temperature=payload.get("temperature"),
            max_tokens=payload.get("max_tokens", payload.get("max_completion_tokens")),
            stream=bool(payload.get("stream")),
            headers=headers,
            body=payload,
            protocol="openai",
        )

    def error(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        fallback = "server_error" if status >= 500 else "invalid_request_error"
        kind = _ERROR_TYPES.get(status, fallback)
        return {"error": {"message": message, "type": kind, "code": str(status)}}

    def stream_error(self, message: str) -> dict[str, Any]:
        return self.error(500, message, None)

    def whole(self, reply: Reply) -> dict[str, Any]:
        message = {"role": "assistant", "content": reply.text}
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": _FINISH[reply.finish],
        }
        return self._envelope(reply, "chat.completion", [choice]) | self._usage(reply)

    def head(self, reply: Reply) -> list[dict[str, Any]]:
        return [self._chunk(reply, {"role": "assistant", "content": ""})]

    def delta(self, reply: Reply, token: str) -> dict[str, Any]:
        return self._chunk(reply, {"content": token})

    def tail(self, reply: Reply) -> list[dict[str, Any]]:
        events = [self._chunk(reply, {}, _FINISH[reply.finish])]
        options = reply.record.body.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            events.append(self._envelope(reply, "chat.completion.chunk", []) | self._usage(reply))
        return events

    def _envelope(self, reply: Reply, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        head = {"id": reply.id, "object": kind, "created": reply.created}
        return head | {"model": reply.record.model, "choices": choices}

    def _chunk(
        self, reply: Reply, delta: dict[str, str], finish: str | None = None
    ) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._envelope(reply, "chat.completion.chunk", [choice])

    def _usage(self, reply: Reply) -> dict[str, Any]:
        prompt, completion = reply.prompt_tokens, reply.completion_tokens
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        return {"usage": usage}
