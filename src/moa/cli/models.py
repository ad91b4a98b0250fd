"""``moa models``: the model catalogue as this configuration sees it, with prices and
whether each model can answer now: a missing key is named, and a server on this machine
(Ollama, vLLM, a llama.cpp server, a fake upstream) is knocked on before it is called
ready."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from moa.catalogue import CatalogueEntry, catalogue
from moa.cli.common import ConfigOption, settings_or_exit
from moa.config import Settings

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})
_KNOCK_TIMEOUT_S = 0.3


def models_command(config: ConfigOption = None) -> None:
    """List the models moa can call with this configuration."""
    settings = settings_or_exit(config)
    rows = [("MODEL", "KIND", "IN $/MTOK", "OUT $/MTOK", "STATUS")]
    for entry in catalogue(settings):
        price = settings.price(entry.id)
        rows.append(
            (
                entry.id,
                entry.kind,
                f"{price.input_usd_per_mtok:g}",
                f"{price.output_usd_per_mtok:g}",
                status(entry, settings),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]
        )


def status(entry: CatalogueEntry, settings: Settings) -> str:
    if not entry.ready:
        return f"needs {entry.needs}"
    provider = settings.provider(entry.id.partition("/")[0])
    if provider is None or entry.kind == "local":
        return "ready (embedded)" if entry.kind == "local" else "ready"
    address = urlsplit(provider.base_url or "")
    if address.hostname in _LOCAL_HOSTS:
        port = address.port or (443 if address.scheme == "https" else 80)
        if not _answers(address.hostname, port):
            return f"not running (nothing answers on {address.hostname}:{port})"
    return "ready"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_KNOCK_TIMEOUT_S):
            return True
    except OSError:
        return False
