"""Whose request a call serves: the API key's id on a server, None in the CLI or the
Python API (one user). A context variable, set once when a request is admitted, so the
engine and the strategies need not carry it: the router reads it where tenants meet, at
the provider slots and the breakers every key shares."""

from __future__ import annotations

from contextvars import ContextVar

TENANT: ContextVar[str | None] = ContextVar("moa_tenant", default=None)


def current_tenant() -> str | None:
    return TENANT.get()
