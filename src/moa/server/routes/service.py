"""Unauthenticated service routes: liveness, readiness, Prometheus metrics, the playground."""

from __future__ import annotations

from importlib import resources
from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from moa.server.errors import error_response
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


# The playground is static files read from the package (moa/server/playground/); nothing is
# fetched from anywhere else, and the policy below makes the browser enforce that (no
# inline scripts or styles, no third-party origins), so untrusted model text never runs.
_PLAYGROUND = resources.files("moa.server").joinpath("playground")
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Read once, when the server is built: reading files per request would block the loop.
PLAYGROUND_ASSETS = {
    f.name: (f.read_bytes(), _MEDIA_TYPES[PurePosixPath(f.name).suffix])
    for f in _PLAYGROUND.iterdir()
    if PurePosixPath(f.name).suffix in _MEDIA_TYPES
}
PLAYGROUND_PAGE = _PLAYGROUND.joinpath("index.html").read_text(encoding="utf-8")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def playground() -> HTMLResponse:
    return HTMLResponse(PLAYGROUND_PAGE, headers=PAGE_HEADERS)


@router.get("/playground/{name}", include_in_schema=False)
async def playground_asset(name: str) -> Response:
    """The page's scripts and stylesheet: only files of the package's playground folder."""
    asset = PLAYGROUND_ASSETS.get(name)
    if asset is None:
        return error_response(404, "not_found", "no such playground file")
    content, media_type = asset
    return Response(content, media_type=media_type, headers=PAGE_HEADERS)
