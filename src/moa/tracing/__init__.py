"""OpenTelemetry tracing, configured only by the standard ``OTEL_*`` environment variables.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (anything but ``none``) or an
OTLP endpoint variable is set, and ``OTEL_SDK_DISABLED`` is not ``true``. When it is off,
this module is all that loads: no OpenTelemetry import, the plain router, and one
``is None`` check per blend. The spans themselves live in ``moa.tracing.spans``; building the
SDK's provider and exporters from the environment in ``moa.tracing.setup``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.util import find_spec
from typing import TYPE_CHECKING

from moa.errors import ConfigError

if TYPE_CHECKING:
    from moa.tracing.spans import Tracing

__all__ = ["EXPORTERS", "SWITCHES", "check", "exporters", "requested", "tracing_from_env"]

# The variables that turn tracing on; every other OTEL_* variable only configures it.
SWITCHES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)
EXPORTERS = ("otlp", "console", "none")
OTLP_PROTOCOLS = {  # protocol -> the module that exports over it, and where it comes from
    "http/protobuf": ("opentelemetry.exporter.otlp.proto.http", "moa[otel]"),
    "grpc": ("opentelemetry.exporter.otlp.proto.grpc", "opentelemetry-exporter-otlp-proto-grpc"),
}


def requested(env: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces: the cheap check made once per runtime."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if names:
        return names != "none"
    return any(env.get(name, "").strip() for name in SWITCHES[1:])


def exporters(env: Mapping[str, str]) -> list[str]:
    """``OTEL_TRACES_EXPORTER`` as a list (default ``otlp``), ``none`` dropped."""
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not one of {', '.join(EXPORTERS)}"
        )
    return [n for n in names if n != "none"]


def otlp_protocol(env: Mapping[str, str]) -> str:
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in OTLP_PROTOCOLS:
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not one of {', '.join(OTLP_PROTOCOLS)}"
        )
    module, package = OTLP_PROTOCOLS[protocol]
    if not _installed(module):
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER=otlp ({protocol}) needs the OTLP exporter: "
            f"pip install '{package}'"
        )
    return protocol


def _installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def check(env: Mapping[str, str]) -> None:
    """Raise ConfigError, naming the variable, if tracing is asked for in a way moa cannot
    honour; commands call this at start so the error is one line, not a traceback."""
    if requested(env) and "otlp" in exporters(env):
        otlp_protocol(env)


def tracing_from_env(env: Mapping[str, str]) -> Tracing | None:
    """The process's Tracing when the environment asks for it, else None (and nothing loaded)."""
    if not requested(env):
        return None
    check(env)
    from moa.tracing.setup import provider_from_env
    from moa.tracing.spans import Tracing

    return Tracing(provider_from_env(env))
