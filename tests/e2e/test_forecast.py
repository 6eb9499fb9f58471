"""Forecast page in headless Chromium: the backtest figures and a planned-spend update."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

if not (Path(__file__).parent / "conftest.py").exists():
    pytest.skip("the shared e2e fixtures (tests/e2e/conftest.py) are not present", allow_module_level=True)
if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is not installed", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from dashboard.format import money  # noqa: E402
from tests.auth_keys import API  # noqa: E402


def test_forecast_page_shows_backtest_and_follows_planned_spend(page, api_url, dashboard_url) -> None:
    f = API.get(f"{api_url}/api/forecast", params={"days": 91}, timeout=120).json()
    page.goto(f"{dashboard_url}/app?page=forecast", timeout=60_000)
    total = page.locator(".gl-kpi-fc-total .gl-kpi-value")
    expect(total).to_have_text(money(sum(f["mean"])), timeout=120_000)
    expect(page.locator(".gl-kpi-fc-mape .gl-kpi-value")).to_have_text(f"{f['backtest']['mape']:.1%}")
    expect(page.locator(".gl-kpi-fc-naive-mape .gl-kpi-value")).to_have_text(f"{f['backtest']['naive_mape']:.1%}")
    channel = max(f["spend"], key=lambda c: f["spend"][c])
    box = page.locator(".bk-input-group").filter(has_text=channel).locator("input").first
    box.fill(str(round(f["spend"][channel] * 2)))
    box.press("Enter")
    page.get_by_role("button", name="Update forecast").click()
    expect(total).not_to_have_text(money(sum(f["mean"])), timeout=60_000)
