"""The model catalogue: every model id moa knows how to call, and whether it is ready.

Shown by ``moa models``, ``GET /v1/models`` and ``GET /api/v1/models``. It lists the models
named in moa.toml (prices, presets, defaults), the embedded model, and a few well-known ids
per built-in provider; any other ``provider/model`` id of a configured provider works too.
"""

from __future__ import annotations

from dataclasses import dataclass

from moa.config import Settings

WELL_KNOWN: tuple[str, ...] = (
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "anthropic/claude-sonnet-4-5",
    "gemini/gemini-2.5-flash",
    "openrouter/meta-llama/llama-3.3-70b-instruct",
    "groq/llama-3.3-70b-versatile",
    "ollama/llama3.2",
)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    id: str
    kind: str
    ready: bool
    needs: str = ""


def catalogue(settings: Settings) -> list[CatalogueEntry]:
    ids: list[str] = ["local/smollm2"]
    ids += list(settings.models)
    for preset in settings.presets.values():
        ids += preset.models + ([preset.synthesizer] if preset.synthesizer else [])
    ids += settings.defaults.models
    ids += WELL_KNOWN
    entries: list[CatalogueEntry] = []
    for model_id in dict.fromkeys(ids):
        provider_name = model_id.partition("/")[0]
        provider = settings.provider(provider_name)
        if provider is None:
            continue
        needs = ""
        if not provider.api_key and provider.api_key_env:
            needs = "" if settings.env.get(provider.api_key_env) else provider.api_key_env
        entries.append(CatalogueEntry(model_id, provider.kind, ready=not needs, needs=needs))
    return entries
