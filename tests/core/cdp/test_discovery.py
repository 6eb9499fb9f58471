"""Segment discovery against planted groups: the right k, pure clusters, names that say what sets each group apart,
rules that parse and whose precision and recall are what the reference evaluator gives; a second world with other
groups and fewer columns, determinism, the too-few-rows error and a million rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.cdp.discovery import MIN_PERSONS, Trait, _names, discover_segments
from core.cdp.segments import parse_rule
from tests.core.cdp.segment_reference import Reference

NAN = float("nan")
VIP = {"total_orders": (10, 30), "avg_order_value": (80.0, 120.0), "days_since_last_order": (2, 30),
       "subscription_status": "active", "subscription_mrr": (40.0, 80.0), "email_engagement_score": (60, 95),
       "support_tickets": (0, 1), "reviews": (1, 5), "referrals": (0, 3), "churn_risk": (0.02, 0.15),
       "predicted_ltv": (600.0, 1200.0)}
LAPSED = {"total_orders": 1, "avg_order_value": (25.0, 60.0), "days_since_last_order": (250, 700),
          "subscription_status": "none", "subscription_mrr": 0.0, "email_engagement_score": (0, 30),
          "support_tickets": 0, "reviews": 0, "referrals": 0, "churn_risk": (0.7, 0.95), "predicted_ltv": (5.0, 20.0)}
NEWSLETTER = {"total_orders": 0, "avg_order_value": NAN, "days_since_last_order": NAN, "subscription_status": "none",
              "subscription_mrr": 0.0, "email_engagement_score": (50, 95), "support_tickets": 0, "reviews": 0,
              "referrals": 0, "churn_risk": NAN, "predicted_ltv": 0.0}
SUPPORT = {"total_orders": (4, 10), "avg_order_value": (55.0, 80.0), "days_since_last_order": (15, 60),
           "subscription_status": "active", "subscription_mrr": (25.0, 45.0), "email_engagement_score": (20, 50),
           "support_tickets": (5, 15), "reviews": (0, 1), "referrals": 0, "churn_risk": (0.4, 0.7),
           "predicted_ltv": (150.0, 300.0)}
WORLD = {"vip": (VIP, 0.25), "lapsed": (LAPSED, 0.30), "newsletter": (NEWSLETTER, 0.25), "support": (SUPPORT, 0.20)}
# a second world: other groups and parameters, no subscription or prediction columns
OTHER = {
    "big_spenders": ({"total_orders": (3, 8), "avg_order_value": (200.0, 400.0), "days_since_last_order": (5, 90),
                      "email_engagement_score": (30, 70), "support_tickets": (0, 2), "reviews": (0, 2)}, 0.2),
    "lapsed": ({"total_orders": 1, "avg_order_value": (15.0, 40.0), "days_since_last_order": (400, 900),
                "email_engagement_score": (0, 20), "support_tickets": 0, "reviews": 0}, 0.5),
    "newsletter": ({"total_orders": 0, "avg_order_value": NAN, "days_since_last_order": NAN,
                    "email_engagement_score": (70, 100), "support_tickets": 0, "reviews": 0}, 0.3),
}


def planted(world: dict, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Persons drawn from the world's groups (uniform ranges; whole numbers where the range is), and their group."""
    rng = np.random.default_rng(seed)
    names = list(world)
    group = rng.choice(len(names), size=n, p=[share for _, share in world.values()])
    cols: dict[str, np.ndarray] = {}
    for g, (spec, _) in enumerate(world.values()):
        rows = np.flatnonzero(group == g)
        for col, v in spec.items():
            if isinstance(v, tuple):
                x = rng.integers(v[0], v[1] + 1, len(rows)) if isinstance(v[0], int) else rng.uniform(*v, len(rows))
            else:
                x = np.full(len(rows), v, dtype=object if isinstance(v, str) else float)
            out = cols.setdefault(col, np.empty(n, dtype=object if isinstance(v, str) else float))
            out[rows] = x
    frame = pd.DataFrame({"person_id": [f"p{i:07d}" for i in range(n)], **cols})
    frame.insert(1, "lifetime_value", (frame["total_orders"] * frame["avg_order_value"]).fillna(0.0))
    return frame, np.array(names, dtype=object)[group]


def reference(frame: pd.DataFrame) -> Reference:
    empty = pd.DataFrame({c: [] for c in ("person_id", "event", "day", "source", "prop", "value", "n")})
    return Reference(frame, empty, empty, None, pd.Timestamp("2024-06-01", tz="UTC"))


def mapping(groups: np.ndarray, labels: np.ndarray) -> dict[str, tuple[int, float]]:
    """Each planted group's most common cluster and the share of the group in it."""
    out = {}
    for g in np.unique(groups):
        counts = np.bincount(labels[groups == g])
        out[g] = (int(counts.argmax()), counts.max() / counts.sum())
    return out


def check_rules(frame: pd.DataFrame, found) -> None:
    """Every rule parses against the frame's columns and its reported precision and recall are the reference's."""
    ref, ids = reference(frame), frame["person_id"].to_numpy(object)
    for c, seg in enumerate(found.segments):
        parse_rule(seg.rule, columns=frame.columns)
        members, cluster = ref.members(seg.rule), set(ids[found.labels == c])
        assert seg.precision == (len(members & cluster) / len(members) if members else 0.0)
        assert seg.recall == len(members & cluster) / len(cluster)


@pytest.fixture(scope="module")
def world():
    frame, groups = planted(WORLD, 4000, seed=1)
    return frame, groups, discover_segments(frame)


def test_finds_the_planted_groups(world):
    frame, groups, found = world
    assert found.k == 4 and len(found.segments) == 4
    assert found.silhouette == max(found.silhouette_by_k.values())
    assert sorted(found.silhouette_by_k) == list(range(3, 9))
    where = mapping(groups, found.labels)
    assert len({c for c, _ in where.values()}) == 4  # one cluster per group
    assert all(purity > 0.9 for _, purity in where.values()), where
    sizes = [s.size for s in found.segments]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == len(frame)
    assert sum(s.share for s in found.segments) == pytest.approx(1.0)
    assert found.n_sampled == len(frame) == found.n_persons
    assert {"never_ordered", "active_subscriber", "support_tickets"} <= set(found.features)


def test_names_say_what_sets_each_group_apart(world):
    _, groups, found = world
    where = mapping(groups, found.labels)
    name = {g: found.segments[c].name.lower() for g, (c, _) in where.items()}
    assert "subscri" in name["vip"] and "support" not in name["vip"]
    assert "subscri" in name["support"] and "support ticket" in name["support"]
    assert "lapsed" in name["lapsed"] and "one-time" in name["lapsed"]
    assert "never bought" in name["newsletter"] and "engaged" in name["newsletter"]
    assert len(set(name.values())) == 4


def test_profiles_and_traits_in_natural_units(world):
    frame, groups, found = world
    where = mapping(groups, found.labels)
    for c, _ in where.values():
        seg, members = found.segments[c], frame[found.labels == c]
        assert seg.avg_ltv == pytest.approx(members["lifetime_value"].mean())
        assert seg.avg_predicted_ltv == pytest.approx(members["predicted_ltv"].mean())
        assert 1 <= len(seg.traits) <= 5
        assert [abs(t.z) for t in seg.traits] == sorted((abs(t.z) for t in seg.traits), reverse=True)
        for t in seg.traits:
            if t.field in frame:
                assert t.value == pytest.approx(members[t.field].mean())
                assert t.overall == pytest.approx(frame[t.field].mean())
    assert found.segments[where["newsletter"][0]].avg_churn_risk is None  # never ordered: no churn risk
    lapsed = found.segments[where["lapsed"][0]]
    assert lapsed.avg_churn_risk == pytest.approx(frame["churn_risk"][groups == "lapsed"].mean(), rel=0.05)
    support = {t.field: t for t in found.segments[where["support"][0]].traits}
    tickets = support["support_tickets"]
    assert tickets.z > 1 and tickets.value > 5 > tickets.overall


def test_rules_describe_the_clusters(world):
    frame, _, found = world
    check_rules(frame, found)
    for seg in found.segments:
        assert seg.precision > 0.95 and seg.recall > 0.95, (seg.name, seg.rule)
        assert all(c.get("field") for c in seg.rule["all"])  # one readable leaf, flat conditions
    churn = [c["value"] for s in found.segments for c in s.rule["all"] if c["field"] == "churn_risk"]
    assert all(isinstance(v, int) and 0 < v < 100 for v in churn)  # percent, whole numbers


def test_rules_on_overlapping_groups_match_the_reference():
    frame, _ = planted(WORLD, 3000, seed=5)
    rng = np.random.default_rng(6)
    for col in ("lifetime_value", "days_since_last_order", "email_engagement_score", "support_tickets",
                "churn_risk", "predicted_ltv"):  # a fifth of each column scrambled: the groups overlap
        rows = rng.choice(len(frame), len(frame) // 5, replace=False)
        frame.loc[rows, col] = frame[col].to_numpy()[rng.permutation(rows)]
    status = frame["subscription_status"].astype(object)
    status[rng.choice(len(frame), 150, replace=False)] = None
    status[rng.choice(len(frame), 30, replace=False)] = ""
    frame["subscription_status"] = status
    found = discover_segments(frame, random_state=3)
    check_rules(frame, found)
    assert any(s.precision < 1 or s.recall < 1 for s in found.segments)


def test_second_world_with_fewer_columns():
    frame, groups = planted(OTHER, 3000, seed=11)
    found = discover_segments(frame, k_range=(2, 6), random_state=4)
    assert found.k == 3
    where = mapping(groups, found.labels)
    assert len({c for c, _ in where.values()}) == 3 and all(p > 0.9 for _, p in where.values()), where
    name = {g: found.segments[c].name.lower() for g, (c, _) in where.items()}
    assert "never bought" in name["newsletter"] and "one-time" in name["lapsed"]
    assert "big-basket" in name["big_spenders"] or "high-value" in name["big_spenders"]
    assert all(s.avg_predicted_ltv is None and s.avg_churn_risk is None for s in found.segments)
    assert not {"churn_risk", "predicted_ltv", "active_subscriber"} & set(found.features)
    check_rules(frame, found)
    assert json.loads(json.dumps(found.to_json(), allow_nan=False))["k"] == 3


def test_json_shape(world):
    out = json.loads(json.dumps(world[2].to_json(), allow_nan=False))
    assert set(out) == {"k", "silhouette", "silhouette_by_k", "n_persons", "n_sampled", "features", "segments"}
    seg = out["segments"][0]
    assert set(seg) == {"name", "size", "share", "avg_ltv", "avg_predicted_ltv", "avg_churn_risk", "traits", "rule",
                        "precision", "recall"}
    assert set(seg["traits"][0]) == {"field", "label", "value", "overall", "z"}


def test_deterministic_with_a_seed():
    frame, _ = planted(WORLD, 3000, seed=2)
    a, b = (discover_segments(frame, sample=1000, random_state=7) for _ in range(2))
    assert a.n_sampled == 1000
    assert a.to_json() == b.to_json() and np.array_equal(a.labels, b.labels)
    assert a == b


def test_too_few_persons():
    frame, _ = planted(WORLD, MIN_PERSONS - 1, seed=3)
    with pytest.raises(ValueError, match="at least 200 persons"):
        discover_segments(frame)
    with pytest.raises(ValueError, match="k_range"):
        discover_segments(planted(WORLD, 500, seed=3)[0], k_range=(1, 4))


def test_duplicate_names_are_told_apart_by_the_next_trait():
    def t(field: str, z: float) -> Trait:
        return Trait(field, field, 0.0, 0.0, z)

    first = [t("days_since_last_order", 2.0), t("email_engagement_score", 1.5)]
    second = [t("days_since_last_order", 1.8), t("avg_order_value", -0.9)]
    nouns = [("one-time buyers", {"total_orders"})] * 2
    names = _names([first, second], nouns)
    assert names == ["Lapsed one-time buyers with high email engagement", "Lapsed one-time buyers with small orders"]
    assert len(set(_names([first[:1], first[:1]], nouns))) == 2  # nothing left to tell them apart: numbered


@pytest.mark.slow
def test_a_million_rows():
    frame, groups = planted(WORLD, 1_000_000, seed=9)
    found = discover_segments(frame)
    assert found.n_sampled == 50_000 and found.n_persons == 1_000_000 and len(found.labels) == 1_000_000
    assert found.k == 4 and sum(s.size for s in found.segments) == 1_000_000
    assert all(p > 0.9 for _, p in mapping(groups, found.labels).values())
