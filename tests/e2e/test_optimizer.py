"""Budget optimizer page in headless Chromium: sliders re-project revenue; the plan's lift matches the API's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

if not (Path(__file__).parent / "conftest.py").exists():
    pytest.skip("the shared e2e fixtures (tests/e2e/conftest.py) are not present", allow_module_level=True)
if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is not installed", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from dashboard.format import money, share  # noqa: E402
from tests.auth_keys import API  # noqa: E402


def card_value(page, key: str):
    return page.locator(f".gl-kpi-{key} .gl-kpi-value")


def test_slider_moves_projection_and_apply_shows_api_lift(page, api_url, dashboard_url) -> None:
    plan = API.post(f"{api_url}/api/optimize", json={}, timeout=60).json()
    page.goto(f"{dashboard_url}/app?page=optimizer", timeout=60_000)
    lift = card_value(page, "plan-lift")
    expect(lift).to_have_text(money(plan["projection"]["lift_per_year"], signed=True), timeout=60_000)
    revenue = card_value(page, "sim-revenue")
    expect(revenue).to_have_text(re.compile(r"\$"), timeout=30_000)
    before = revenue.text_content()
    movable = next(r["channel"] for r in plan["channels"] if not r.get("fixed_cost"))
    handle = page.locator(".gl-slider").filter(has_text=movable).locator(".noUi-handle").first
    handle.focus()
    for _ in range(25):
        handle.press("ArrowRight")
    expect(revenue).not_to_have_text(before, timeout=30_000)
    page.get_by_role("button", name="Apply optimized").click()
    expect(card_value(page, "sim-lift")).to_have_text(money(plan["projection"]["lift_per_year"], signed=True),
                                                      timeout=30_000)
    page.get_by_role("button", name="Reset to current").click()
    expect(card_value(page, "sim-lift")).to_have_text(money(0.0, signed=True), timeout=30_000)


def test_moves_show_their_chance_held_back_moves_their_reason_and_tests_come_first(page, api_url,
                                                                                  dashboard_url) -> None:
    """The default plan on the demo data: each moved channel with its probability of gaining revenue, each held-back
    one with its reason, and the recommended lift tests in the "Test before you move" panel."""
    plan = API.post(f"{api_url}/api/optimize", json={}, timeout=60).json()
    page.goto(f"{dashboard_url}/app?page=optimizer", timeout=60_000)
    table = page.locator("table.gl-plan")
    expect(table).to_contain_text("Chance the move gains revenue", timeout=60_000)
    moved = [r for r in plan["channels"] if r["prob_gain"] is not None]
    assert moved, "the default demo plan moves no channel"
    for r in moved:
        row = table.locator("tr").filter(has_text=r["channel"])
        expect(row.locator("td.gl-prob")).to_contain_text(share(r["prob_gain"]))
    held = [r for r in plan["channels"] if r["held_back"]]
    assert held, "the default demo plan holds nothing back"
    for r in held:
        expect(page.locator(".gl-held")).to_contain_text(r["held_back"])
    assert plan["tests"], "the demo model recommends no lift test"
    panel = page.locator("table.gl-tests")
    for t in plan["tests"]:
        expect(panel.locator("tr").filter(has_text=t["reason"])).to_contain_text(str(t["weeks"]))
        expect(page.locator(".gl-test-actions")).to_contain_text(t["action"])
    for t in (t for t in plan["tests"] if t["hold"]):
        row = next(r for r in plan["channels"] if r["channel"] == t["channel"])
        assert row["bound"] == "lift test first" and row["optimized"] == row["current"]
