"""Attribution page in headless Chromium: credits under each model, shift vs last click, range and model choice."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.auth_keys import API  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

DEFAULT = "last_click,first_click,linear,time_decay,position_based,markov,shapley,incremental"


def _row(page, channel: str):
    return page.locator(".gl-attr-table tr.gl-attr-row").filter(has_text=channel)


def test_compare_models_change_range_and_models(page, api_url, dashboard_url) -> None:
    full = API.get(f"{api_url}/api/attribution", params={"models": DEFAULT}, timeout=120).json()
    channel = full["channels"][0]
    page.goto(f"{dashboard_url}/app?page=attribution", timeout=60_000)
    table = page.locator(".gl-attr-table")
    expect(table).to_contain_text("Last click", timeout=60_000)
    expect(table).to_contain_text("Markov chain")
    expect(table).to_contain_text("Incremental lift")
    share = full["models"]["last_click"][channel]["share"]
    expect(_row(page, channel)).to_contain_text(f"{share:.1%}")
    shift = full["models"]["markov"][channel]["share"] - share
    expect(_row(page, channel)).to_contain_text(f"{shift * 100:+.1f} pts")
    expect(page.locator(".gl-desc")).to_contain_text("Zhao")
    if full["mmm"]:
        expect(table).to_contain_text("MMM incremental")
        mmm_share = full["mmm"].get(channel)
        if mmm_share is not None:
            expect(_row(page, channel)).to_contain_text(f"{mmm_share:.1%}")
    expect(page.locator(".bk-Figure").first).to_be_visible(timeout=60_000)  # the grouped bar chart

    # a shorter period: the numbers follow the API for that range
    end = date.fromisoformat(full["data_range"]["end_date"])
    start = end - timedelta(days=29)
    page.locator(".bk-input-group").filter(has_text="Period").locator("select").select_option("Last 30 days")
    recent = API.get(f"{api_url}/api/attribution", params={"models": DEFAULT, "start_date": str(start),
                                                             "end_date": str(end)}, timeout=120).json()
    expect(page.locator(".gl-attr-summary")).to_contain_text(f"{start.isoformat()} to {end.isoformat()}",
                                                             timeout=60_000)
    recent_share = recent["models"]["last_click"][channel]["share"]
    expect(_row(page, channel)).to_contain_text(f"{recent_share:.1%}")

    # drop a model from the selection: its column disappears
    page.locator(".choices__item").filter(has_text="Incremental lift").locator(".choices__button").click()
    expect(table).not_to_contain_text("Incremental lift", timeout=60_000)
    expect(table).to_contain_text("Shapley")


def test_reconciled_view_with_mmm_and_warnings(page, api_url, dashboard_url) -> None:
    models = DEFAULT + ",causal"
    body = API.get(f"{api_url}/api/attribution", params={"models": models}, timeout=300).json()
    unified = body["unified"]
    assert unified["calibrated"], "the demo store has a fitted MMM: the journey credit must be calibrated by it"
    page.goto(f"{dashboard_url}/app?page=attribution", timeout=60_000)
    table = page.locator(".gl-unified-table")
    expect(table).to_contain_text("Reconciled", timeout=120_000)
    expect(table).to_contain_text("MMM")
    row = next(r for r in unified["channels"] if r["channel"] in unified["calibrated"])
    line = page.locator(".gl-unified-table tr.gl-unified-row").filter(has_text=row["channel"])
    expect(line).to_contain_text(f"{row['reconciled']:.1%}")
    expect(line).to_contain_text(f"{row['journeys']:.1%}")
    direct = [r for r in unified["channels"] if r["intent_signal"]]
    if direct:
        expect(page.locator(".gl-unified-table tr.gl-unified-row").filter(has_text=direct[0]["channel"])
               ).to_contain_text("sign of intent")
    for text in unified["disagreements"][:1]:
        expect(page.locator(".gl-attr-disagree").first).to_contain_text(text.split(";")[0])
    for text in unified["warnings"][:1]:
        expect(page.locator(".gl-attr-warning").first).to_contain_text(text[:60])
    expect(page.locator(".gl-desc")).to_contain_text("Causal journey model")
