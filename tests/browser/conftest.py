"""Fixtures for the playground's browser tests: moa served for real on the scripted
upstream, a funded key, and a page in the system's headless Chromium driven by Playwright.

The tests are synchronous (Playwright's sync API) so no asyncio loop runs beside the
browser's. A missing Chromium skips them with the reason, except on CI, where it fails:
CI installs Chromium (`make browser`), so a skip there would hide a broken install.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from moa.testing import ScriptedUpstream
from moa.testing.browser import chromium_missing, create_key, launch_chromium
from moa.testing.served import ServedApp
from tests.conftest import fake_settings

# Waits end on a page condition; the deadline is only a backstop for a busy machine.
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)

DEFAULT_MODELS = ["fake/alpha", "fake/beta"]
PRICES = {"fake/alpha": {"input_usd_per_mtok": 0.5, "output_usd_per_mtok": 1.5}}


@pytest.fixture(autouse=True)
def no_blocking_calls_on_the_event_loop() -> None:
    """Replaces the suite's asyncio watch: these tests run no loop of their own (Playwright's
    sync API runs its loop on this thread, and moa serves from another)."""


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the package's tests, closed when they are done: Playwright's sync
    API keeps an asyncio loop running on this thread, which the suite's async tests need
    free, so it must never outlive this package."""
    reason = chromium_missing()
    if reason and os.environ.get("CI"):
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


@dataclass
class Playground:
    """moa serving the playground, and a key with credits on its database."""

    app: ServedApp
    key: str

    @property
    def url(self) -> str:
        return self.app.url


@pytest.fixture
def moa(upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[Playground]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'moa.db'}"
    settings = fake_settings(
        upstream,
        server={"database_url": database_url},
        defaults={"models": DEFAULT_MODELS},
        models=PRICES,
    )
    with ServedApp(settings) as app:
        yield Playground(app, create_key(database_url, credits=1000))


@dataclass
class Console:
    """What the page reported: console errors and uncaught exceptions."""

    errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh browser context (its own storage) per test. An uncaught exception in the
    page's scripts fails every test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    opened.on("console", console.on_message)
    opened.on("pageerror", lambda error: console.exceptions.append(str(error)))
    yield opened
    context.close()
    assert not console.exceptions, f"the page threw: {console.exceptions}"
