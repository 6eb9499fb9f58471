"""The dashboard shell: page discovery, navigation, layering, and pages built from the real API (no browser)."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dashboard import app as shell_mod
from dashboard.client import ApiClient, ApiError
from dashboard.format import money, ratio
from tests.auth_keys import AUTH_HEADERS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard"


def test_pages_are_discovered_with_sections_in_order() -> None:
    pages = shell_mod.discover_pages()
    names = [p.name for p in pages]
    assert "overview" in names and "channels" in names
    assert names.index("overview") < names.index("channels")
    for p in pages:
        assert p.section in shell_mod.SECTIONS and p.title
    sections = [shell_mod.SECTIONS.index(p.section) for p in pages]
    assert sections == sorted(sections)


def test_broken_or_incomplete_page_modules_are_absent(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "fakepages"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text(textwrap.dedent("""
        import panel as pn
        TITLE, SECTION, ORDER = "Good", "Customers", 5
        def page(client):
            return pn.pane.Markdown("good page")
    """))
    (pkg / "broken.py").write_text("import not_a_module_anywhere\nTITLE='x'\n")
    (pkg / "helper.py").write_text("X = 1\n")  # not a page: no TITLE/page
    monkeypatch.syspath_prepend(str(tmp_path))
    pages = shell_mod.discover_pages("fakepages")
    assert [(p.name, p.section) for p in pages] == [("good", "Customers")]
    sys.modules.pop("fakepages", None)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_dashboard_talks_to_the_api_only_over_http() -> None:
    files = sorted(DASHBOARD.rglob("*.py"))
    assert files
    for f in files:
        bad = _imports(f) & {"core", "functions", "boto3", "fastapi", "mangum"}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}; the dashboard may only use the HTTP API"


# --- pages against the real API (in process) ---------------------------------------------------------------------
@pytest.fixture
def api(tmp_path, monkeypatch):
    """An ApiClient whose HTTP goes to the app in process, over a tmp store with a published dataset."""
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.delenv("GROWTHLENS_WORKSPACE", raising=False)
    import numpy as np
    import pandas as pd

    from functions import deps
    from functions.app import create_app
    from functions.datasets import publish_dataset
    from functions.storage import LocalStore

    deps._store.cache_clear()
    rng = np.random.default_rng(5)
    dates = pd.date_range("2024-01-01", periods=240, freq="D")
    frames = []
    for ch, spend, roas in [("Search", 1000, 3.0), ("Social", 600, 2.0)]:
        s = spend * (1 + 0.1 * rng.standard_normal(len(dates)))
        frames.append(pd.DataFrame({"date": dates, "channel": ch, "spend": s, "impressions": s * 50, "clicks": s,
                                    "conversions": s / 20, "revenue": s * roas}))
    kpis = pd.DataFrame({"date": dates, "revenue": 7000 + 100 * rng.standard_normal(len(dates)), "orders": 70,
                         "new_customers": 30})
    publish_dataset(LocalStore(tmp_path), "default", {"marketing": pd.concat(frames), "kpis": kpis})
    client = ApiClient("http://testserver")
    client._http = TestClient(create_app(), headers=AUTH_HEADERS)
    yield client
    deps._store.cache_clear()


def _html(view) -> str:
    """All HTML pane text inside a Panel layout."""
    import panel as pn

    return "\n".join(o.object for o in view.select(pn.pane.HTML) if isinstance(o.object, str))


def test_overview_page_shows_the_api_numbers(api) -> None:
    from dashboard.pages import overview

    data = api.get("/api/metrics/overview")
    text = _html(overview.page(api))
    assert money(data["totals"]["spend"]) in text and money(data["totals"]["revenue"]) in text
    assert ratio(data["totals"]["roas"]) in text
    assert data["insights"][0]["text"].split(" ")[0] in text  # insights rendered


def test_overview_range_change_requeries(api) -> None:
    from dashboard.pages import overview

    pg = overview.OverviewPage(api)
    pg.range.preset.value = "Last 30 days"
    data = api.get("/api/metrics/overview", **pg.range.params)
    assert pg.data == data and money(data["totals"]["spend"]) in _html(pg.layout)


def test_channels_page_switches_channel(api) -> None:
    from dashboard.pages import channels

    pg = channels.ChannelsPage(api)
    assert pg.select.value == "Search"  # largest spend first
    pg.select.value = "Social"
    perf = api.get("/api/channels/Social/performance", **pg.range.params)
    text = _html(pg.layout)
    assert money(perf["totals"]["spend"]) in text and ratio(perf["totals"]["platform_roas"]) in text
    assert "No marketing mix model has been fitted" in text or pg.perf.get("model")


def test_shell_navigates_and_shows_errors_in_place(api) -> None:
    import panel as pn

    tpl = shell_mod.build_app(api, page="channels")
    shell = tpl.shell
    nav = shell.nav.object
    assert shell.current == "channels"
    assert 'class="gl-nav-link gl-nav-channels active" href="?page=channels"' in nav
    assert 'href="?page=overview"' in nav and nav.index("Marketing") < nav.index("Overview")
    shell.show("overview")
    assert shell.current == "overview" and 'gl-nav-overview active' in shell.nav.object
    assert shell_mod.build_app(api, page="no-such-page").shell.current == "overview"  # unknown → default
    broken = shell_mod.PageInfo("broken", "Broken", "Data", 1, lambda c: c.get("/api/nowhere"))
    s2 = shell_mod.Shell(api, pages=[broken])
    alerts = s2.main.select(pn.pane.Alert)
    assert alerts and "Not Found" in alerts[0].object


def test_client_errors_carry_the_api_message(api) -> None:
    with pytest.raises(ApiError) as e:
        api.get("/api/channels/Radio/performance")
    assert e.value.status == 404 and "unknown channel 'Radio'" in e.value.message
    assert api.get_optional("/api/models/latest") is None
    unreachable = ApiClient("http://127.0.0.1:9", timeout=1)
    with pytest.raises(ApiError) as e2:
        unreachable.get("/api/health")
    assert e2.value.status == 0 and "not reachable" in e2.value.message
