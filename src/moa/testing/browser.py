"""Headless Chromium for the playground's browser tests and its screenshots.

Why it exists: Playwright's own browser download cannot run on moa's machines, so the
system's Chromium (Debian's ``chromium`` package) is driven through ``executable_path``,
with the flags it needs in a container (no sandbox, no GPU, no background traffic). Both
``tests/browser`` and ``scripts/playground_screenshots.py`` launch it from here, and both
need a funded key on the database a served moa uses.

Playwright is a development dependency: import this module only where it is installed.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from moa.store import Store

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
INSTALL_HINT = "install it with `apt-get install -y chromium` (or `make browser`)"


def chromium_missing() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    if not CHROMIUM.is_file():
        return f"Chromium is not installed at {CHROMIUM}: {INSTALL_HINT}"
    return None


def launch_chromium(playwright: Playwright) -> Browser:
    """The system Chromium, headless, each launch with a fresh temporary profile."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
    )


def create_key(database_url: str, credits: int = 1000, name: str = "playground") -> str:
    """A new funded key on moa's database (which the served app has created); returns its
    plaintext, for the page's API key field."""

    async def create() -> str:
        store = await Store.open(database_url)
        try:
            _, plaintext = await store.create_key(credits=credits, name=name)
            return plaintext
        finally:
            await store.close()

    # Its own thread: Playwright's sync API keeps an event loop running on the caller's.
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, create()).result()
