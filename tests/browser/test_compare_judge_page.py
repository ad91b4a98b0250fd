"""The playground's Compare and Judge modes in a real browser, the tabs between the modes,
and the page on a phone-sized screen."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from moa.testing import ScriptedUpstream
from tests.browser.conftest import Console, Playground
from tests.browser.helpers import card, open_playground

pytestmark = pytest.mark.browser

VERDICT = {
    "scores": [
        {"contestant": 1, "score": 8, "reason": "clear and correct"},
        {"contestant": 2, "score": 5, "reason": "vague"},
    ],
    "summary": "Alpha explains it best.",
}


def compare(page: Page) -> None:
    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("button", name="Compare", exact=True).click()


def test_compare_shows_each_models_answer_with_the_fastest_and_longest_marked(
    page: Page, moa: Playground, upstream: ScriptedUpstream, console: Console
) -> None:
    upstream.script("alpha", content="Short.")
    upstream.script("beta", content="A much longer answer than the other one.")
    open_playground(page, moa)
    compare(page)
    expect(card(page, "fake/alpha")).to_contain_text("Short.")
    expect(card(page, "fake/beta")).to_contain_text("A much longer answer than the other one.")
    expect(card(page, "fake/beta")).to_contain_text("longest")
    expect(page.get_by_role("region", name="Answers").get_by_text("fastest")).to_have_count(1)
    expect(page.get_by_label("Usage")).to_contain_text("3 charged")
    assert console.errors == []


def test_compare_streams_an_answer_before_it_is_finished(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.script("beta", content="First words, then a long pause", token_delay_ms=600_000)
    open_playground(page, moa)
    compare(page)
    beta = card(page, "fake/beta")
    expect(beta).to_contain_text("streaming")
    expect(beta).to_contain_text("First")
    expect(card(page, "fake/alpha")).to_contain_text("[alpha] answer to:")
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Cancelled")


def test_judge_shows_scores_ranks_and_the_winner_with_its_reason(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.script("judge", content=json.dumps(VERDICT))
    open_playground(page, moa)
    page.get_by_role("tab", name="Judge").click()
    page.get_by_label("Judge model").fill("fake/judge")
    page.get_by_role("button", name="Judge", exact=True).click()
    verdict = page.get_by_role("region", name="Verdict")
    expect(verdict).to_contain_text("Winner: fake/alpha (8/10)")
    expect(verdict).to_contain_text("clear and correct")
    expect(verdict).to_contain_text("Alpha explains it best.")
    expect(verdict.get_by_role("row")).to_have_count(3)
    expect(card(page, "fake/beta")).to_contain_text("rank 2")
    expect(card(page, "fake/beta")).to_contain_text("[beta] answer to:")


def test_judge_these_judges_the_compared_models_on_the_same_prompt(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.script("judge", content=json.dumps(VERDICT))
    open_playground(page, moa, prompt="Which sorting algorithm?")
    compare(page)
    page.get_by_label("Judged by").fill("fake/judge")
    page.get_by_role("button", name="Judge these").click()
    expect(page.get_by_role("tab", name="Judge")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("region", name="Verdict")).to_contain_text("Winner: fake/alpha")
    contestants = page.get_by_role("region", name="Contestants").get_by_role("article")
    expect(contestants).to_have_count(2)
    judged = upstream.calls("judge")[0].messages[-1]["content"]
    assert "Which sorting algorithm?" in judged


def test_a_judge_that_is_a_contestant_is_refused_in_words(page: Page, moa: Playground) -> None:
    open_playground(page, moa)
    page.get_by_role("tab", name="Judge").click()
    page.get_by_label("Judge model").fill("fake/alpha")
    page.get_by_role("button", name="Judge", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("is also a contestant")


def test_the_modes_are_tabs_the_arrow_keys_move_between(page: Page, moa: Playground) -> None:
    page.goto(moa.url)
    blend = page.get_by_role("tab", name="Blend")
    blend.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Compare")).to_be_focused()
    expect(page.get_by_role("tabpanel")).to_have_accessible_name("Compare")
    expect(page.get_by_role("button", name="Blend", exact=True)).to_be_hidden()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Judge")).to_have_attribute("aria-selected", "true")


def test_the_page_fits_a_phone_screen(page: Page, moa: Playground) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    open_playground(page, moa)
    compare(page)
    expect(card(page, "fake/beta")).to_contain_text("[beta] answer to:")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
