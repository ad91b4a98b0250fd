"""The playground's Blend mode in a real browser: every source as a card with its answer,
the synthesis, each strategy's extras, and every way a run can fail shown in words."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from moa.testing import ScriptedUpstream
from tests.browser.conftest import Console, Playground
from tests.browser.helpers import card, open_playground, run_blend

pytestmark = pytest.mark.browser


def test_every_sources_answer_and_the_synthesis_are_on_the_page(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.script("synth", content="Both agree: **tides** follow the moon.")
    open_playground(page, moa, prompt="Why are there tides?")
    run_blend(page, synthesizer="fake/synth")
    expect(card(page, "fake/alpha")).to_contain_text("[alpha] answer to: Why are there tides?")
    expect(card(page, "fake/beta")).to_contain_text("[beta] answer to: Why are there tides?")
    synthesis = card(page, "Synthesis")
    expect(synthesis).to_contain_text("Both agree: tides follow the moon.")
    expect(synthesis.locator("strong")).to_have_text("tides")
    expect(page.get_by_label("Usage")).to_contain_text("4 charged · 996 left")


def test_a_failing_source_shows_that_it_failed_and_why(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.script("beta", status=500, error_message="beta is down")
    open_playground(page, moa)
    run_blend(page)
    beta = card(page, "fake/beta")
    expect(beta).to_contain_text("failed")
    expect(beta).to_contain_text("HTTP 500: the upstream failed")
    expect(card(page, "fake/alpha")).to_contain_text("[alpha] answer to:")


def test_a_blend_whose_every_source_fails_says_so(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.set_default(status=400, error_message="nobody home")
    open_playground(page, moa)
    run_blend(page)
    expect(page.get_by_role("alert")).to_contain_text("all_sources_failed")
    expect(card(page, "fake/alpha")).to_contain_text("HTTP 400: the upstream rejected the request")


def test_a_bad_key_shows_unauthorized(page: Page, moa: Playground) -> None:
    open_playground(page, moa, key="moa_sk_not_a_key")
    run_blend(page)
    expect(page.get_by_role("alert")).to_contain_text("unauthorized")
    expect(page.get_by_role("alert")).to_contain_text("Check the API key")


def test_cancel_stops_the_upstream_calls(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.set_default(stall=True)
    open_playground(page, moa)
    run_blend(page)
    upstream.wait_for(lambda: len(upstream.requests) == 2, within=30)
    page.get_by_role("button", name="Cancel", exact=True).click()
    upstream.wait_for(lambda: all(r.disconnected for r in upstream.requests), within=30)
    expect(page.get_by_role("alert")).to_contain_text("Cancelled")
    expect(card(page, "fake/alpha")).to_contain_text("not run")
    expect(page.get_by_role("button", name="Blend", exact=True)).to_be_enabled()


def test_a_server_that_is_gone_is_a_network_error(page: Page, moa: Playground) -> None:
    open_playground(page, moa)
    moa.app.stop()
    run_blend(page)
    expect(page.get_by_role("alert")).to_contain_text("Could not reach the moa server")


def test_a_server_that_goes_away_mid_answer_is_reported(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.set_default(stall=True)
    open_playground(page, moa)
    run_blend(page)
    upstream.wait_for(lambda: len(upstream.requests) == 2, within=30)
    moa.app.kill()
    expect(page.get_by_role("alert")).to_contain_text("connection to the moa server was lost")


def test_a_server_that_shuts_down_mid_answer_says_so(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.set_default(stall=True)
    open_playground(page, moa)
    run_blend(page)
    upstream.wait_for(lambda: len(upstream.requests) == 2, within=30)
    moa.app.stop()
    expect(page.get_by_role("alert")).to_contain_text("shutting_down")


def test_html_in_an_answer_is_shown_as_text_and_never_runs(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    hostile = '<script>window.pwned = 1</script> <img src="x" onerror="window.pwned = 2">'
    upstream.script("alpha", content=hostile)
    upstream.script("synth", content=f"**Quoted**: {hostile}")
    open_playground(page, moa)
    run_blend(page, synthesizer="fake/synth")
    expect(card(page, "fake/alpha")).to_contain_text("<script>window.pwned = 1</script>")
    expect(card(page, "Synthesis")).to_contain_text('<img src="x" onerror="window.pwned = 2">')
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.pwned") is None


def test_answers_render_lists_code_blocks_and_headings(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", content="## Steps\n\n1. measure\n2. cut\n\n```\nx = 1 < 2\n```")
    open_playground(page, moa)
    run_blend(page)
    alpha = card(page, "fake/alpha")
    expect(alpha.get_by_role("heading", name="Steps")).to_be_visible()
    expect(alpha.get_by_role("listitem")).to_have_text(["measure", "cut"])
    expect(alpha.locator("pre code")).to_have_text("x = 1 < 2")


def test_a_run_logs_no_console_errors(page: Page, moa: Playground, console: Console) -> None:
    open_playground(page, moa)
    run_blend(page)
    expect(card(page, "Synthesis")).to_contain_text("done")
    assert console.errors == []


def test_council_shows_the_answer_agreements_disagreements_and_questions(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    verdict = {
        "final_answer": "Use a queue.",
        "agreement_points": ["Queues decouple"],
        "disagreement_points": ["Which broker"],
        "follow_up_questions": ["How much traffic?"],
    }
    upstream.script("synth", content=json.dumps(verdict))
    open_playground(page, moa)
    run_blend(page, strategy="council", synthesizer="fake/synth")
    expect(card(page, "Synthesis")).to_contain_text("Use a queue.")
    council = page.get_by_role("region", name="Council")
    for text in ("Agreements", "Queues decouple", "Which broker", "How much traffic?"):
        expect(council).to_contain_text(text)


def test_best_of_marks_the_picked_source(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.script("synth", content="PICK: 2\nBeta's answer, improved.")
    open_playground(page, moa)
    run_blend(page, strategy="best_of", synthesizer="fake/synth")
    expect(card(page, "fake/beta")).to_contain_text("picked")
    expect(card(page, "fake/alpha")).not_to_contain_text("picked")


def test_moa_groups_the_sources_by_layer(page: Page, moa: Playground) -> None:
    open_playground(page, moa)
    run_blend(page, strategy="moa", layers="2")
    for layer in ("Layer 0", "Layer 1", "Layer 2"):
        group = page.get_by_role("region", name=layer)
        expect(group.get_by_role("article")).to_have_count(2)
        expect(card(group, "fake/beta")).to_contain_text("[beta] answer to:")


def test_self_moa_shows_a_card_per_sample_from_the_start(
    page: Page, moa: Playground, upstream: ScriptedUpstream
) -> None:
    upstream.set_default(stall=True)
    open_playground(page, moa, models="fake/alpha")
    run_blend(page, strategy="self_moa", samples="3")
    sources = page.get_by_role("region", name="Sources")
    expect(sources.get_by_role("article")).to_have_count(3)
    expect(card(page, "fake/alpha #3")).to_contain_text("running")
    page.get_by_role("button", name="Cancel", exact=True).click()


def test_only_the_controls_a_strategy_uses_are_shown(page: Page, moa: Playground) -> None:
    open_playground(page, moa)
    layers, samples = page.get_by_label("Layers"), page.get_by_label("Samples")
    expect(layers).to_be_hidden()
    expect(samples).to_be_hidden()
    page.get_by_label("Strategy").select_option("moa")
    expect(layers).to_be_visible()
    expect(samples).to_be_hidden()
    page.get_by_label("Strategy").select_option("self_moa")
    expect(samples).to_be_visible()
    expect(layers).to_be_hidden()


def test_the_models_default_to_the_servers_and_the_picker_shows_prices(
    page: Page, moa: Playground
) -> None:
    page.goto(moa.url)
    page.get_by_label("API key").fill(moa.key)
    page.get_by_label("API key").press("Tab")
    expect(page.get_by_label("Models")).to_have_value("fake/alpha, fake/beta")
    page.get_by_text("Pick from the catalogue").click()
    alpha = page.get_by_role("button", name=re.compile(r"^fake\/alpha"))
    expect(alpha).to_contain_text("$0.5 in · $1.5 out per M tokens")
    expect(alpha).to_have_attribute("aria-pressed", "true")
    alpha.click()
    expect(page.get_by_label("Models")).to_have_value("fake/beta")


def test_ctrl_enter_runs_the_current_mode(page: Page, moa: Playground) -> None:
    open_playground(page, moa)
    page.get_by_label("Prompt").press("Control+Enter")
    expect(card(page, "fake/alpha")).to_contain_text("[alpha] answer to:")


def test_a_past_run_reopens_from_the_history(page: Page, moa: Playground) -> None:
    open_playground(page, moa, prompt="Remember me")
    run_blend(page)
    expect(card(page, "Synthesis")).to_contain_text("done")
    page.reload()
    page.get_by_role("button", name=re.compile("^Blend · consensus · done")).click()
    expect(card(page, "fake/beta")).to_contain_text("[beta] answer to: Remember me")
    expect(page.get_by_label("Prompt")).to_have_value("Remember me")


def test_a_reopened_vote_shows_its_tally_and_flags_a_degraded_answer(
    page: Page, moa: Playground
) -> None:
    """The vote and degraded fields are rendered from the done event (here replayed from
    the history, as a run of the vote strategy would stream it)."""
    request = {
        "models": ["fake/alpha", "fake/beta", "fake/gamma"],
        "strategy": "vote",
        "messages": [{"role": "user", "content": "2 + 2?"}],
        "stream": True,
    }
    sources = [
        {"model": "fake/alpha", "layer": 0, "status": "ok", "content": "ANSWER: 4"},
        {"model": "fake/beta", "layer": 0, "status": "ok", "content": "ANSWER: 4"},
        {"model": "fake/gamma", "layer": 0, "status": "error", "error": "HTTP 503"},
    ]
    done = {
        "event": "done",
        "strategy": "vote",
        "sources": sources,
        "vote": {"answer": "4", "votes": {"4": 2, "5": 1}, "agreement": 0.67},
        "degraded": True,
        "degraded_sources": [
            {
                "model": "fake/gamma",
                "layer": 0,
                "sample": None,
                "status": "failed",
                "error": "HTTP 503",
            }
        ],
        "usage": {"calls": 3, "prompt_tokens": 9, "completion_tokens": 6, "cost_usd": 0},
    }
    past = {
        "mode": "blend",
        "request": request,
        "events": [{"event": "chunk", "content": "ANSWER: 4"}, done],
        "at": 0,
        "error": None,
    }
    page.goto(moa.url)
    page.evaluate("run => localStorage.setItem('moa-history', JSON.stringify([run]))", past)
    page.reload()
    page.get_by_role("button", name=re.compile("^Blend · vote · done")).click()
    vote = page.get_by_role("region", name="Vote")
    expect(vote).to_contain_text("Winning answer: 4 · agreement 67%")
    expect(vote.get_by_role("row")).to_have_count(3)
    expect(page.get_by_role("note")).to_contain_text("fake/gamma, layer 0: failed (HTTP 503)")
    expect(card(page, "Winning answer")).to_contain_text("degraded")
