"""Google Gemini: ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``.

Each stream event is a whole ``GenerateContentResponse`` holding one token; the last one
carries ``finishReason`` and the full ``usageMetadata``. A blocked prompt answers with
``promptFeedback.blockReason: SAFETY`` and no candidates; a blocked answer with a candidate
whose ``finishReason`` is ``SAFETY`` and which has no content. Errors use Google's shape,
and a retry delay travels as a ``google.rpc.RetryInfo`` detail, not a Retry-After header.
"""

from __future__ import annotations

from typing import Any

from moa.testing.upstream.script import RecordedRequest, text_of
from moa.testing.upstream.wire import Reply, Wire, count, dumps, number

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "blocked": "SAFETY"}
_RATINGS = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]
METHODS = ("generateContent", "streamGenerateContent")


class GeminiWire(Wire):
    name = "gemini"
    id_prefix = "resp-"
    retry_after_header = False

    def parse(
        self, payload: dict[str, Any], headers: dict[str, str], target: str
    ) -> RecordedRequest:
        """``target`` is the path's ``{model}:{method}``."""
        model, _, method = target.rpartition(":")
        if not model or method not in METHODS:
            raise ValueError(f"unknown method {method!r}")
        config = payload.get("generationConfig") or {}
        if not isinstance(config, dict):
            raise ValueError("generationConfig: must be an object")
        number(config, "topP", 0, 1)
        return RecordedRequest(
            model=model,
            messages=_system(payload.get("systemInstruction")) + _turns(payload.get("contents")),
            temperature=number(config, "temperature", 0, 2),
            max_tokens=count(config, "maxOutputTokens"),
            stream=method == "streamGenerateContent",
            headers=headers,
            body=payload,
            protocol="gemini",
        )

    def error(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        name = _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        error: dict[str, Any] = {"code": status, "message": message, "status": name}
        if retry_after is not None:
            retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo"}
            error["details"] = [retry | {"retryDelay": f"{retry_after:g}s"}]
        return {"error": error}

    def stream_error(self, message: str) -> dict[str, Any]:
        return self.error(500, message, None)

    def whole(self, reply: Reply) -> dict[str, Any]:
        return self._response(reply, reply.text, _FINISH[reply.finish], final=True)

    def head(self, reply: Reply) -> list[dict[str, Any]]:
        return []

    def delta(self, reply: Reply, token: str) -> dict[str, Any]:
        return self._response(reply, token, None, final=False)

    def tail(self, reply: Reply) -> list[dict[str, Any]]:
        return [self._response(reply, "", _FINISH[reply.finish], final=True)]

    def frame(self, event: dict[str, Any]) -> bytes:
        return b"data: " + dumps(event) + b"\r\n\r\n"

    def _response(
        self, reply: Reply, text: str, finish: str | None, *, final: bool
    ) -> dict[str, Any]:
        prompt = reply.prompt_tokens
        done = reply.completion_tokens if final else 0
        usage = {"promptTokenCount": prompt, "totalTokenCount": prompt + done}
        if done:
            usage["candidatesTokenCount"] = done
        head = {"usageMetadata": usage, "modelVersion": reply.record.model, "responseId": reply.id}
        if reply.blocked == "prompt":
            return head | {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _RATINGS}}
        candidate: dict[str, Any] = {"index": 0}
        if reply.blocked == "answer":
            candidate["safetyRatings"] = _RATINGS
        else:
            candidate["content"] = {"parts": [{"text": text}], "role": "model"}
        if finish is not None:
            candidate["finishReason"] = finish
        return head | {"candidates": [candidate]}


def _system(instruction: Any) -> list[dict[str, Any]]:
    parts = instruction.get("parts") if isinstance(instruction, dict) else None
    text = text_of(parts)
    return [{"role": "system", "content": text}] if text else []


def _turns(contents: Any) -> list[dict[str, Any]]:
    if not isinstance(contents, list) or not contents:
        raise ValueError("contents: at least one content is required")
    turns = []
    for content in contents:
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            raise ValueError("contents: each content has role user or model")
        role = "assistant" if content["role"] == "model" else "user"
        turns.append({"role": role, "content": text_of(content.get("parts"))})
    return turns
