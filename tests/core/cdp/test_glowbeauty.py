"""GlowBeauty demo data: personas, planted patterns and messy identities are present, in each tool's shape."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date

import pytest

from core.demo.glowbeauty import FILES, PERSONA_SHARES, generate_glowbeauty, write_glowbeauty

END = date(2025, 6, 30)


@pytest.fixture(scope="module")
def gb():
    return generate_glowbeauty(seed=7, customers=600, end=END)


@pytest.fixture(scope="module")
def gb2():
    return generate_glowbeauty(seed=123, customers=300, end=date(2024, 1, 15))


def test_personas_and_counts(gb, gb2):
    for d, n in ((gb, 600), (gb2, 300)):
        personas = Counter(p["persona"] for p in d.truth["persons"].values())
        assert sum(personas.values()) == n
        for name, share in PERSONA_SHARES.items():
            assert abs(personas[name] - share * n) <= 1, name
        assert d.truth["persona_counts"] == dict(personas)


def test_persona_figures_follow_the_brief(gb):
    persons = gb.truth["persons"].values()
    by = defaultdict(list)
    for p in persons:
        by[p["persona"]].append(p)
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    assert median([p["lifetime_value"] for p in by["vip_subscriber"]]) > 1000
    assert median([p["lifetime_value"] for p in by["one_time_buyer"]]) < 300
    assert all(p["total_orders"] == 1 and p["subscription_status"] == "none" for p in by["one_time_buyer"])
    assert all(p["subscription_status"] == "active" for p in by["vip_subscriber"] + by["regular_subscriber"])
    assert all(p["subscription_status"] == "cancelled" for p in by["churned_high_value"])
    end = date.fromisoformat(gb.truth["end"])
    for p in by["at_risk_subscriber"]:
        gap = (end - date.fromisoformat(p["last_order_date"])).days
        assert 55 <= gap <= 125
    assert all(p["referrals"] >= 1 and p["reviews"] >= 2 for p in by["vip_subscriber"])


def test_patterns_planted(gb):
    pat = gb.truth["patterns"]
    persons = gb.truth["persons"]
    assert pat["happy_path"] and pat["support_heavy"] and pat["engagement_decline"]
    assert set(pat["engagement_decline"]) == {k for k, p in persons.items() if p["persona"] == "at_risk_subscriber"}
    # support heavy: several tickets, long threads, a refund request
    tickets_by_email = defaultdict(list)
    for t in gb.gorgias_tickets:
        tickets_by_email[t["customer"]["email"]].append(t)
    for pid in pat["support_heavy"]:
        ts = tickets_by_email[persons[pid]["email"]]
        assert len(ts) >= 3
        assert any(tag["name"] == "refund" for t in ts for tag in t["tags"])
        assert max(len(t["messages"]) for t in ts) >= 3
    # engagement decline: opens in the last third are rarer than in the first third
    opens = defaultdict(list)
    for e in gb.klaviyo_events:
        if e["metric"]["name"] == "Opened Email":
            opens[e["profile"]["id"]].append(e["attributes"]["timestamp"])
    early = late = 0
    for pid in pat["engagement_decline"]:
        ts = opens[persons[pid]["ids"]["klaviyo"][0]]
        if not ts:
            continue
        lo, hi = min(ts), max(ts)
        early += sum(t < lo + (hi - lo) / 3 for t in ts)
        late += sum(t > lo + 2 * (hi - lo) / 3 for t in ts)
    assert late < early / 2


def test_tool_shapes_use_real_field_names(gb):
    o = gb.shopify_orders[0]
    assert {"id", "email", "created_at", "total_price", "customer", "line_items"} <= set(o)
    assert isinstance(o["total_price"], str) and float(o["total_price"]) > 0
    assert {"id", "email", "first_name", "last_name", "phone"} <= set(o["customer"])
    k = gb.klaviyo_events[0]
    assert k["type"] == "event" and {"attributes", "metric", "profile"} <= set(k)
    g = gb.ga4_events[0]
    assert {"user_pseudo_id", "event_name", "event_timestamp", "user_id"} <= set(g)
    assert g["event_timestamp"] > 1e15  # microseconds
    t = gb.gorgias_tickets[0]
    assert t["customer"]["email"] and t["messages"]
    s = gb.recharge_subscriptions[0]
    assert {"customer_id", "email", "status", "price", "created_at", "cancelled_at"} <= set(s)
    c = gb.recharge_charges[0]
    assert {"customer_id", "total_price", "processed_at", "shopify_order_id"} <= set(c)


def test_messy_identities_present(gb):
    m = gb.truth["messy"]
    persons = gb.truth["persons"]
    for case in ("email_case", "plus_alias", "phone_formats", "name_typo", "anonymous_identified", "three_ids"):
        assert m[case], case
    shop_emails = {o["customer"]["id"]: o["email"] for o in gb.shopify_orders}
    klav = {p["id"]: p["attributes"] for p in gb.klaviyo_profiles}
    # email case: Shopify has capitals where Klaviyo has the lowercase address
    pid = m["email_case"][0]
    sid = int(persons[pid]["ids"]["shopify"][0])
    assert shop_emails[sid] != shop_emails[sid].lower() and shop_emails[sid].lower() == persons[pid]["email"]
    # plus alias in Klaviyo
    pid = m["plus_alias"][0]
    assert "+" in klav[persons[pid]["ids"]["klaviyo"][0]]["email"]
    # name typo: Klaviyo last name differs from the true one
    pid = m["name_typo"][0]
    assert klav[persons[pid]["ids"]["klaviyo"][0]]["last_name"] != persons[pid]["last_name"]
    # phone formats differ between tools for the same person
    pid = m["phone_formats"][0]
    phones = {klav[persons[pid]["ids"]["klaviyo"][0]]["phone_number"]}
    phones |= {o["customer"]["phone"] for o in gb.shopify_orders if str(o["customer"]["id"]) in
               persons[pid]["ids"]["shopify"]}
    assert len(phones) >= 2
    # anonymous visitor later identified: GA4 events without user_id before the first with one
    pid = m["anonymous_identified"][0]
    pseudo = persons[pid]["ids"]["ga4"][0]
    rows = sorted((r for r in gb.ga4_events if r["user_pseudo_id"] == pseudo), key=lambda r: r["event_timestamp"])
    assert rows[0]["user_id"] is None and any(r["user_id"] for r in rows)
    # three ids: two Shopify accounts with different emails plus other tools' ids
    pid = m["three_ids"][0]
    ids = persons[pid]["ids"]
    assert len(ids["shopify"]) == 2 and ids["klaviyo"] and ids["recharge"]
    assert sum(len(v) for v in ids.values()) >= 3


def test_truth_matches_the_exports(gb):
    persons = gb.truth["persons"]
    rec = gb.truth["records"]
    ltv = defaultdict(float)
    n = Counter()
    for o in gb.shopify_orders:
        pid = rec[f"shopify:{o['customer']['id']}"]
        ltv[pid] += float(o["total_price"])
        n[pid] += 1
    for pid, p in persons.items():
        assert p["lifetime_value"] == pytest.approx(ltv.get(pid, 0.0), abs=0.01)
        assert p["total_orders"] == n.get(pid, 0)
    # every source id in the exports has a true person
    for c in gb.recharge_charges:
        assert f"recharge:{c['customer_id']}" in rec
    for t in gb.gorgias_tickets:
        assert f"gorgias:{t['customer']['id']}" in rec
    for p in gb.klaviyo_profiles:
        assert f"klaviyo:{p['id']}" in rec
    for r in gb.ga4_events:
        assert f"ga4:{r['user_pseudo_id']}" in rec
    # charges mirror subscription orders
    order_ids = {str(o["id"]) for o in gb.shopify_orders}
    assert all(c["shopify_order_id"] in order_ids for c in gb.recharge_charges)


def test_deterministic_and_seed_sensitive():
    a = generate_glowbeauty(seed=5, customers=100, end=END)
    b = generate_glowbeauty(seed=5, customers=100, end=END)
    c = generate_glowbeauty(seed=6, customers=100, end=END)
    assert a.shopify_orders == b.shopify_orders and a.truth == b.truth
    assert a.shopify_orders != c.shopify_orders


def test_write_files(tmp_path):
    out = write_glowbeauty(tmp_path / "gb", seed=1, customers=60, end=END)
    for topics in FILES.values():
        for rel in topics.values():
            lines = (out / rel).read_text().splitlines()
            assert all(json.loads(x) for x in lines)
    truth = json.loads((out / "truth.json").read_text())
    assert truth["generator"] == "glowbeauty" and len(truth["persons"]) == 60


def test_bad_arguments():
    with pytest.raises(ValueError, match="customers"):
        generate_glowbeauty(customers=5)
