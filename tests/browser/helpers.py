"""Steps the browser tests share: open the playground with a key, models and a prompt;
run a blend with some controls set; find a source's card by its accessible name."""

from __future__ import annotations

from playwright.sync_api import Locator, Page

from tests.browser.conftest import Playground


def open_playground(
    page: Page,
    moa: Playground,
    *,
    key: str | None = None,
    models: str = "fake/alpha, fake/beta",
    prompt: str = "What is a mixture of agents?",
) -> None:
    page.goto(moa.url)
    page.get_by_label("API key").fill(key or moa.key)
    page.get_by_label("API key").press("Tab")  # a change event: the catalogue loads
    page.get_by_label("Models").fill(models)
    page.get_by_label("Prompt").fill(prompt)


def run_blend(
    page: Page,
    *,
    strategy: str | None = None,
    synthesizer: str | None = None,
    layers: str | None = None,
    samples: str | None = None,
) -> None:
    if strategy:
        page.get_by_label("Strategy").select_option(strategy)
    if synthesizer:
        page.get_by_label("Synthesizer").fill(synthesizer)
    if layers:
        page.get_by_label("Layers").fill(layers)
    if samples:
        page.get_by_label("Samples").fill(samples)
    page.get_by_role("button", name="Blend", exact=True).click()


def card(scope: Page | Locator, name: str) -> Locator:
    """A model call's card (or the synthesis's), named by its model id."""
    return scope.get_by_role("article", name=name, exact=True)
