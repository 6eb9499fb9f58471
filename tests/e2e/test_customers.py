"""Customer Search and Profile in headless Chromium: type a name, click the customer, see the unified profile with
events from at least three tools."""

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


def test_search_a_name_and_open_the_profile(page, api_url, dashboard_url) -> None:
    r = API.get(f"{api_url}/api/customers", params={"sort": "-lifetime_value", "page_size": 1}, timeout=60)
    assert r.status_code == 200, f"no customer data in the demo store: {r.text}"
    top = r.json()["items"][0]
    page.goto(f"{dashboard_url}/app?page=customers", timeout=60_000)
    box = page.locator(".gl-customer-search input")
    expect(box).to_be_visible(timeout=60_000)
    box.press_sequentially(f"{top['first_name']} {top['last_name']}", delay=30)
    link = page.locator("a.gl-customer-link").filter(has_text=top["name"]).first
    expect(link).to_be_visible(timeout=30_000)
    link.click()
    expect(page.locator(".gl-profile-name")).to_have_text(top["name"], timeout=60_000)
    expect(page.locator(".gl-kpi-p-ltv .gl-kpi-value")).to_have_text(money(top["lifetime_value"]))
    assert "id=" in page.url and "page=profile" in page.url
    timeline = page.locator(".gl-timeline")
    expect(timeline).to_be_visible()
    sources = {s for s in ("shopify", "klaviyo", "ga4", "gorgias", "recharge")
               if page.locator(f".gl-tl-{s}").count() > 0}
    assert len(sources) >= 3, sources
    expect(page.locator(".gl-identities")).to_be_visible()
