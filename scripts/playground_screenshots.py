"""Screenshots of the playground's three modes, for the README.

Serves moa for real on a scripted upstream (three demo models, a synthesizer and a judge,
answering canned markdown), drives the page in the system's headless Chromium, and writes
docs/screenshots/{blend,compare,judge}.png. No API key or network is needed:

    make screenshots            # or: .venv/bin/python scripts/playground_screenshots.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from moa.config import Settings, settings_from_dict
from moa.testing import ScriptedUpstream
from moa.testing.browser import chromium_missing, create_key, launch_chromium
from moa.testing.served import ServedApp

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PROMPT = "Should a three-person team start a new web app on SQLite or PostgreSQL?"
MODELS = ["demo/atlas", "demo/brook", "demo/cedar"]
ANSWERS = {
    "atlas": "**SQLite** first.\n\n- one file, no server to run\n- fast for a few hundred"
    " requests per second\n- move to PostgreSQL when you need several app servers",
    "brook": "PostgreSQL from day one: migrations, roles and `jsonb` are worth it, and a"
    " managed instance costs less than a day of moving data later.",
    "cedar": "Either works. Decide by deployment:\n\n1. a single VM: SQLite with WAL mode\n"
    "2. containers or several replicas: PostgreSQL\n\n```sql\nPRAGMA journal_mode=WAL;\n```",
}
COUNCIL = {
    "final_answer": "Start on **SQLite** if the app runs on one machine; choose PostgreSQL"
    " as soon as several processes or replicas write to it.\n\n- keep the schema portable"
    " (plain SQL types, an ORM or query builder)\n- turn on WAL mode: `PRAGMA journal_mode=WAL`",
    "agreement_points": [
        "Both handle a small team's load",
        "Portable schemas keep the switch cheap",
    ],
    "disagreement_points": ["Whether PostgreSQL's features are worth running it from day one"],
    "follow_up_questions": ["Will the app run on more than one server this year?"],
}
VERDICT = {
    "scores": [
        {"contestant": 1, "score": 8, "reason": "Clear default with a concrete trigger to move."},
        {"contestant": 2, "score": 6, "reason": "Sound, but ignores the cost of running a server."},
        {"contestant": 3, "score": 9, "reason": "Decides by deployment and shows the WAL setting."},
    ],
    "summary": "The answer that ties the choice to how the app is deployed is the most useful.",
}


def script(upstream: ScriptedUpstream) -> None:
    for index, (name, text) in enumerate(ANSWERS.items()):
        upstream.script(name, content=text, latency_ms=150 * (index + 1), token_delay_ms=15)
    upstream.script("synth", content=json.dumps(COUNCIL), latency_ms=200)
    upstream.script("judge", content=json.dumps(VERDICT), latency_ms=200)


def settings(upstream: ScriptedUpstream, database_url: str) -> Settings:
    prices = {"input_usd_per_mtok": 0.15, "output_usd_per_mtok": 0.6}
    return settings_from_dict(
        {
            "providers": {
                "demo": {"kind": "openai", "base_url": upstream.base_url, "api_key": "demo"}
            },
            "models": {m: prices for m in [*MODELS, "demo/synth", "demo/judge"]},
            "defaults": {"models": MODELS},
            "server": {"database_url": database_url},
        }
    )


def shoot(page: Page, url: str, key: str) -> None:
    page.goto(url)
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Tab")
    expect(page.get_by_label("Models")).to_have_value(", ".join(MODELS))
    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_label("Strategy").select_option("council")
    page.get_by_label("Synthesizer").fill("demo/synth")
    page.get_by_role("button", name="Blend", exact=True).click()
    expect(page.get_by_role("region", name="Council")).to_be_visible()
    page.screenshot(path=OUT / "blend.png", full_page=True)

    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_role("button", name="Judge these")).to_be_visible()
    page.get_by_label("Judged by").fill("demo/judge")
    page.screenshot(path=OUT / "compare.png", full_page=True)

    page.get_by_role("button", name="Judge these").click()
    expect(page.get_by_role("region", name="Verdict")).to_contain_text("Winner")
    page.screenshot(path=OUT / "judge.png", full_page=True)


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    missing = chromium_missing()
    if missing:
        raise SystemExit(missing)
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ScriptedUpstream() as upstream,
        sync_playwright() as playwright,
    ):
        script(upstream)
        database_url = f"sqlite+aiosqlite:///{Path(tmp) / 'moa.db'}"
        with ServedApp(settings(upstream, database_url)) as app:
            key = create_key(database_url)
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            shoot(page, app.url, key)
            browser.close()
    print(f"wrote {', '.join(p.name for p in sorted(OUT.glob('*.png')))} to {OUT}")


if __name__ == "__main__":
    main()
