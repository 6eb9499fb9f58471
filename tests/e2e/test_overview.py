"""Overview page in headless Chromium: KPI cards show the API's numbers, the chart follows, the range re-queries."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from dashboard.format import money, pct, ratio
from tests.auth_keys import API  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def kpi(page, key: str):
    return page.locator(f".gl-kpi-{key} .gl-kpi-value")


def test_overview_kpis_match_the_api_and_the_chart_loads(page, api_url, dashboard_url) -> None:
    data = API.get(f"{api_url}/api/metrics/overview", timeout=60).json()
    page.goto(f"{dashboard_url}/app?page=overview", timeout=60_000)
    expect(kpi(page, "spend")).to_have_text(money(data["totals"]["spend"]), timeout=30_000)
    expect(kpi(page, "revenue")).to_have_text(money(data["totals"]["revenue"]))
    expect(kpi(page, "roas")).to_have_text(ratio(data["totals"]["roas"]))
    days = (date.fromisoformat(data["end_date"]) - date.fromisoformat(data["start_date"])).days + 1
    expect(page.locator(".gl-kpi-revenue .gl-kpi-delta")).to_have_text(
        f"{pct(data['change']['revenue']['pct'])} vs previous {days} days")
    # the chart is loaded after the numbers
    expect(page.locator(".bk-Figure").first).to_be_visible(timeout=60_000)
    # quick insights and the channel mix come from the same response
    first = data["insights"][0]
    expect(page.locator(".gl-insights").first).to_contain_text(first["text"])
    top = data["channels"][0]
    expect(page.locator(".gl-channel-table")).to_contain_text(top["channel"])
    expect(page.locator(".gl-channel-table")).to_contain_text(money(top["spend"]))


def test_overview_period_change_shows_the_new_range(page, api_url, dashboard_url) -> None:
    base = API.get(f"{api_url}/api/metrics/overview", timeout=60).json()
    end = date.fromisoformat(base["data_end"])
    start = end - timedelta(days=29)
    month = API.get(f"{api_url}/api/metrics/overview", timeout=60,
                      params={"start_date": start.isoformat(), "end_date": end.isoformat()}).json()
    assert money(month["totals"]["spend"]) != money(base["totals"]["spend"])
    page.goto(f"{dashboard_url}/app?page=overview", timeout=60_000)
    expect(kpi(page, "spend")).to_have_text(money(base["totals"]["spend"]), timeout=30_000)
    page.locator(".bk-input-group").filter(has_text="Period").locator("select").select_option("Last 30 days")
    expect(kpi(page, "spend")).to_have_text(money(month["totals"]["spend"]), timeout=30_000)
    expect(kpi(page, "roas")).to_have_text(ratio(month["totals"]["roas"]))
    # the revenue toggle redraws the chart without an error
    page.get_by_role("button", name="Revenue", exact=True).click()
    expect(page.locator(".bk-Figure").first).to_be_visible(timeout=60_000)
    expect(page.locator(".alert-danger")).to_have_count(0)


def test_sidebar_lists_sections_and_navigates(page, api_url, dashboard_url) -> None:
    page.goto(f"{dashboard_url}/app", timeout=60_000)
    expect(kpi(page, "spend")).to_be_visible(timeout=30_000)  # Overview is the default page
    expect(page.locator(".gl-nav-section").first).to_have_text("Marketing")
    expect(page.locator(".gl-nav-overview")).to_have_class("gl-nav-link gl-nav-overview active")
    page.get_by_role("link", name="Channels", exact=True).click()
    expect(page.locator(".gl-kpi-ch-spend .gl-kpi-value")).to_be_visible(timeout=30_000)
    assert "page=channels" in page.url
    expect(page.locator(".gl-nav-channels")).to_have_class("gl-nav-link gl-nav-channels active")
    page.go_back()
    expect(kpi(page, "spend")).to_be_visible(timeout=30_000)
