"""Channels page in headless Chromium: pick a channel, see its chart, metrics and (with a model) its curve, its
health and its lift tests."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from dashboard.format import money, ratio, share
from tests.auth_keys import API  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def kpi(page, key: str):
    return page.locator(f".gl-kpi-{key} .gl-kpi-value")


def test_select_a_channel_and_see_its_metrics_chart_and_model(page, api_url, dashboard_url) -> None:
    listing = API.get(f"{api_url}/api/channels", timeout=60).json()["channels"]
    assert len(listing) >= 2
    first, target = listing[0]["channel"], listing[1]["channel"]
    page.goto(f"{dashboard_url}/app?page=channels", timeout=60_000)
    default = API.get(f"{api_url}/api/channels/{first}/performance", timeout=60).json()
    expect(kpi(page, "ch-spend")).to_have_text(money(default["totals"]["spend"]), timeout=30_000)

    page.locator(".bk-input-group").filter(has_text="Channel").locator("select").select_option(target)
    perf = API.get(f"{api_url}/api/channels/{target}/performance", timeout=60).json()
    expect(kpi(page, "ch-spend")).to_have_text(money(perf["totals"]["spend"]), timeout=30_000)
    expect(kpi(page, "ch-roas")).to_have_text(ratio(perf["totals"]["platform_roas"]))
    expect(kpi(page, "ch-cpc")).to_have_text(money(perf["totals"]["cpc"]))
    expect(kpi(page, "ch-cpa")).to_have_text(money(perf["totals"]["cpa"]))
    expect(page.locator(".bk-Figure").first).to_be_visible(timeout=60_000)
    best = perf["best_weekdays"][0]["label"]
    expect(page.locator(".gl-rank-weekday")).to_contain_text(f"1. {best}")

    model = perf["model"]
    if model is None:  # the demo store normally has a fitted model; without one the page says so
        expect(page.get_by_text("No marketing mix model has been fitted")).to_be_visible(timeout=30_000)
        return
    expect(kpi(page, "optimal-spend")).to_have_text(money(model["optimal_daily_spend"]), timeout=60_000)
    expect(kpi(page, "current-spend")).to_have_text(money(model["current_daily_spend"]))
    expect(kpi(page, "incremental-roas")).to_have_text(ratio(model["roas"]["mean"]))
    gap = model["optimal_daily_spend"] - model["current_daily_spend"]
    verb = "Increase" if gap > 0 else "Reduce"
    expect(kpi(page, "opportunity")).to_have_text(f"{verb} by {money(abs(gap))}/day")
    # spend chart, response curve and seasonality (and the decomposition when the API offers it)
    expect(page.locator(".bk-Figure")).to_have_count(4 if _has_contributions(api_url) else 3, timeout=60_000)


def _has_contributions(api_url: str) -> bool:
    r = API.get(f"{api_url}/api/contributions", params={"granularity": "week"}, timeout=60)
    return r.status_code == 200 and bool(r.json().get("dates"))


def test_channel_health_and_lift_tests_show_computed_content(page, api_url, dashboard_url) -> None:
    """The channel the model recommends a lift test for shows its health status, the numbers behind it, what to do,
    and the recommended test; a well-identified channel says there is nothing to do."""
    from dashboard.pages.channels import STATUS_WORDS

    names = [c["channel"] for c in API.get(f"{api_url}/api/channels", timeout=60).json()["channels"]]
    views = {n: API.get(f"{api_url}/api/channels/{n}/performance", timeout=60).json()["model"] for n in names}
    if not any(views.values()):
        pytest.skip("the demo store has no fitted model")
    tested = [n for n, v in views.items() if v.get("recommended_test")]
    assert tested, "the demo model recommends no lift test"  # its wide-interval channels should get one
    name = tested[0]
    view = views[name]
    h, test = view["health"], view["recommended_test"]
    page.goto(f"{dashboard_url}/app?page=channels&channel={quote(name)}", timeout=60_000)
    expect(page.locator(".gl-health-status")).to_have_text(STATUS_WORDS[h["status"]], timeout=60_000)
    table = page.locator("table.gl-health")
    expect(table).to_contain_text(f"{h['max_corr_with']} (r = {h['max_corr']:.2f})")
    expect(table).to_contain_text(f"±{share(h['roas_rel_width'] / 2)} of the estimate")
    for action in h["actions"]:
        expect(page.locator(".gl-health-actions").first).to_contain_text(action)
    expect(page.locator(".gl-lift-recommended")).to_contain_text(test["action"])
    expect(page.locator(".gl-lift-recommended")).to_contain_text(test["reason"])
    if view["lift_tests"]:
        expect(page.locator("table.gl-lift-measured")).to_contain_text(money(view["lift_tests"][0]["lift"],
                                                                            signed=True))
    else:
        expect(page.locator(".gl-lift-measured")).to_have_text(f"No lift test of {name} has been measured yet.")

    fine = [n for n, v in views.items() if v and v["health"]["status"] == "identified" and not v["health"]["actions"]]
    if fine:
        page.goto(f"{dashboard_url}/app?page=channels&channel={quote(fine[0])}", timeout=60_000)
        expect(page.locator(".gl-health-status")).to_have_text(STATUS_WORDS["identified"], timeout=60_000)
        expect(page.locator(".gl-health-actions").first).to_contain_text("Nothing to do")
