"""Unauthenticated service routes: liveness, readiness, Prometheus metrics, the playground."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from moa.server.readiness import readiness
from moa.server.state import app_state

router = APIRouter(tags=["service"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/healthz/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 when the database (and Redis, if configured) answer, else 503 naming
    what is down."""
    is_ready, checks = await readiness(app_state(request))
    body = {"status": "ready" if is_ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if is_ready else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    body = app_state(request).metrics.render()
    return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def playground() -> HTMLResponse:
    page = resources.files("moa.server").joinpath("playground.html").read_text(encoding="utf-8")
    return HTMLResponse(page)
