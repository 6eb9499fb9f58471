"""Customer Insights in headless Chromium: the health donut and the API's bands, an opportunity in dollars whose
assumption is edited in the page (the dollars follow the API's answer for the new value), "Save as segment" and the
saved segment found on the Segments page; the churn model cards; a profile shows churn risk and the next best
action, and Customer Search shows the prediction columns."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

if not (Path(__file__).parent / "conftest.py").exists():
    pytest.skip("the shared e2e fixtures (tests/e2e/conftest.py) are not present", allow_module_level=True)
if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is not installed", allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

from dashboard.format import money, number, share  # noqa: E402
from dashboard.insight_views import assumption_spec, to_api_value  # noqa: E402
from tests.auth_keys import API  # noqa: E402

WAIT = 120_000
ROUTE = "/api/customers/insights"


def insights(api_url: str, **params: float) -> dict:
    r = API.get(f"{api_url}{ROUTE}", params=params, timeout=300)
    assert r.status_code == 200, f"{r.status_code}: {r.text}"
    return r.json()


def _opportunity(doc: dict, oid: str) -> dict:
    return next(o for o in doc["opportunities"] if o["id"] == oid)


def pick_edit(api_url: str, doc: dict) -> tuple[dict, dict, float, dict]:
    """An opportunity, one of its assumptions and a new value (as typed in the page) that moves its dollars at the
    precision the page shows them; the API's answer for that value."""
    for opp in doc["opportunities"]:
        if not opp.get("customers") or not opp.get("dollars"):
            continue
        for a in opp["assumptions"]:
            spec = assumption_spec(a)
            lo, hi, v = spec["start"], spec["end"], spec["value"]
            for shown in (round(v * 1.6, 2), round(v / 2, 2), round((lo + hi) / 2, 2) if hi < 1e6 else v + 1):
                if shown == v or not lo <= shown <= hi:
                    continue
                new = insights(api_url, **{f"{opp['id']}.{a['name']}": to_api_value(shown, spec)})
                if money(_opportunity(new, opp["id"])["dollars"]) != money(opp["dollars"]):
                    return opp, a, shown, new
    pytest.fail(f"no opportunity with an assumption that moves its dollars: {doc['opportunities']}")


def test_insights_donut_opportunity_assumption_and_save_as_segment(page: Page, api_url: str,
                                                                     dashboard_url: str) -> None:
    doc = insights(api_url)
    page.goto(f"{dashboard_url}/app?page=insights", timeout=WAIT)

    # customer health: the donut, and each band with the API's count
    expect(page.locator("svg.gl-health-donut")).to_be_visible(timeout=WAIT)
    for band in doc["health"]["bands"]:
        row = page.locator(f".gl-band-{band['band']}")
        expect(row.locator(".gl-band-customers")).to_have_text(number(band["customers"]))
        expect(row.locator(".gl-band-share")).to_have_text(share(band["share"]))
    critical = doc["health"]["thresholds"]["critical"]
    expect(page.locator(".gl-band-critical .gl-band-rule")).to_have_text(f"critical: churn risk ≥ {share(critical)}")

    # an opportunity in dollars, ranked as the API ranks them
    first = doc["opportunities"][0]
    expect(page.locator(".gl-opp").first.locator(".gl-opp-title")).to_have_text(first["title"])
    expect(page.locator(f".gl-opp-{first['id']} .gl-opp-dollars")).to_have_text(money(first["dollars"]))

    # edit an assumption: the dollars follow the API's answer for the new value
    opp, a, shown, new = pick_edit(api_url, doc)
    card = page.locator(f".gl-opp-{opp['id']}")
    dollars = card.locator(".gl-opp-dollars")
    expect(dollars).to_have_text(money(opp["dollars"]))
    box = card.locator(f".gl-assumption-{opp['id']}-{a['name']} input")
    box.fill(f"{shown:g}")
    box.press("Enter")
    expected = _opportunity(new, opp["id"])
    expect(dollars).to_have_text(money(expected["dollars"]), timeout=WAIT)
    assert money(expected["dollars"]) != money(opp["dollars"])

    # save the opportunity as a segment, follow the link, find it in the Segments list
    saved_id = None
    try:
        card.locator(f".gl-save-opp-{opp['id']} button").click()
        link = card.locator("a.gl-saved-segment-link")
        expect(link).to_be_visible(timeout=WAIT)
        href = link.get_attribute("href") or ""
        assert "page=segments&segment=" in href
        saved_id = href.rsplit("segment=", 1)[1]
        saved = API.get(f"{api_url}/api/segments/{saved_id}", timeout=60).json()
        assert saved["name"] == expected["title"] and saved["rules"] == expected["rule"]
        link.click()
        expect(page.locator(".gl-seg-title")).to_contain_text(expected["title"], timeout=WAIT)
        page.goto(f"{dashboard_url}/app?page=segments", timeout=WAIT)
        expect(page.locator("a.gl-seg-link").filter(has_text=expected["title"])).to_be_visible(timeout=WAIT)
    finally:
        if saved_id:
            API.delete(f"{api_url}/api/segments/{saved_id}", timeout=60)


def test_insights_models_and_discovered_segments(page: Page, api_url: str, dashboard_url: str) -> None:
    doc = insights(api_url)
    page.goto(f"{dashboard_url}/app?page=insights", timeout=WAIT)
    expect(page.locator("svg.gl-health-donut")).to_be_visible(timeout=WAIT)
    models = doc["models"]
    for target in ("purchase", "subscription"):
        box = page.locator(f".gl-model-{target}")
        if models.get(target):
            expect(box.locator(".gl-model-eval")).to_contain_text("Ranking quality (AUC)")
            expect(box.locator(".gl-calibration")).to_be_visible()
        elif target in (models.get("messages") or {}):
            expect(box.locator(".gl-model-missing")).to_have_text(models["messages"][target])
    segs = (doc.get("discovered") or {}).get("segments") or []
    if segs:
        expect(page.locator(".gl-disc-name").first).to_have_text(segs[0]["name"])


def test_profile_and_search_show_predictions(page: Page, api_url: str, dashboard_url: str) -> None:
    r = API.get(f"{api_url}/api/customers", params={"sort": "-churn_risk", "page_size": 25}, timeout=60)
    assert r.status_code == 200, r.text
    person = next((c for c in r.json()["items"] if c.get("churn_risk") is not None and c.get("next_action_label")),
                  None)
    assert person, "no scored customer with a next best action in the demo"
    page.goto(f"{dashboard_url}/app?page=profile&id={person['id']}", timeout=WAIT)
    expect(page.locator(".gl-kpi-p-churn .gl-kpi-value")).to_have_text(share(person["churn_risk"]), timeout=WAIT)
    if person.get("churn_target"):
        expect(page.locator(".gl-kpi-p-churn .gl-kpi-delta")).to_contain_text(person["churn_target"])
    expect(page.locator(".gl-next-action-label")).to_have_text(person["next_action_label"])

    page.goto(f"{dashboard_url}/app?page=customers", timeout=WAIT)
    expect(page.locator(".gl-customer-results th").filter(has_text="Churn risk")).to_be_visible(timeout=WAIT)
    expect(page.locator(".gl-customer-results th").filter(has_text="Next best action")).to_be_visible()
