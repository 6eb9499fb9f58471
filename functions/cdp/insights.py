"""Customer insights for the Insights page: health, opportunities in dollars, segment performance, discovered
segments and the model cards, all computed from the published profiles and predictions.

Opportunities select their members by running their rule through the segment engine (the same evaluation a saved
segment gets, so "Save as segment" saves exactly the customers the dollars were computed on) and value them from
those members' predictions with the assumptions the caller passes. Discovered segments are clustered by the
refresh writer when the models are refitted (once per data day) and read here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.cdp.health import HealthThresholds, summarize_health
from core.cdp.opportunities import (
    OPPORTUNITIES,
    Assumptions,
    data_defaults,
    opportunity_rule,
    rank_opportunities,
    sbg_retention,
    value_opportunity,
)
from core.cdp.scoring import RETENTION_PERIOD_DAYS
from functions.cdp import membership
from functions.cdp.common import read_state
from functions.cdp.predictions import load_predictor, models_json, read_discovery
from functions.cdp.query import load_profiles
from functions.cdp.segment_defs import list_definitions
from functions.cdp.segment_engine import engine_for
from functions.cdp.segment_service import lookup_for
from functions.storage import Store

__all__ = ["insights"]


def _retention(store: Store, ws: str) -> Any:
    pred = load_predictor(store, ws)
    if pred is None or pred.retention is None:
        return None
    return sbg_retention(pred.retention, period_days=RETENTION_PERIOD_DAYS)


def parse_overrides(overrides: dict[str, str], base: pd.DataFrame) -> dict[str, Assumptions]:
    """Each opportunity's assumptions from ``<opportunity>.<assumption>=value`` strings (``ValueError`` naming
    the parameter when the opportunity, the assumption or the value is not valid)."""
    by_opp: dict[str, dict[str, float]] = {oid: {} for oid in OPPORTUNITIES}
    for key, raw in overrides.items():
        oid, _, name = key.partition(".")
        if oid not in by_opp:
            raise ValueError(f"{key}: unknown opportunity {oid!r} (known: {', '.join(OPPORTUNITIES)})")
        try:
            by_opp[oid][name] = float(raw)
        except ValueError:
            raise ValueError(f"{key}: expected a number, got {raw!r}") from None
    defaults = data_defaults(base)
    out = {}
    for oid, values in by_opp.items():
        try:
            out[oid] = Assumptions.build(oid, values, base_defaults=defaults)
        except ValueError as e:
            raise ValueError(f"{oid}.{e}") from None
    return out


def _segment_performance(store: Store, ws: str, prof: pd.DataFrame) -> list[dict[str, Any]]:
    """Per saved segment: members, average lifetime value, 90-day retention expected by the churn models
    (1 - the members' mean churn risk, over members who have one) and mean churn risk."""
    out = []
    has_risk = "churn_risk" in prof.columns
    for d in list_definitions(store, ws).values():
        ids = membership.read_members(store, ws, d.id)
        at = prof.index.get_indexer(pd.Index(ids, dtype=object))
        sub = prof.iloc[at[at >= 0]]
        risk = sub["churn_risk"].astype(float) if has_risk else pd.Series(dtype=float)
        mean_risk = float(risk.mean()) if risk.notna().any() else None
        out.append({"id": d.id, "name": d.name, "system": d.system, "customers": int(len(sub)),
                    "avg_ltv": float(sub["lifetime_value"].mean()) if len(sub) else None,
                    "retention_90d": None if mean_risk is None else 1.0 - mean_risk,
                    "avg_churn_risk": mean_risk})
    return out


def insights(store: Store, ws: str, overrides: dict[str, str] | None = None,
             thresholds: HealthThresholds | None = None) -> dict[str, Any]:
    """Everything the Insights page shows (``LookupError`` before customer data or predictions exist,
    ``ValueError`` naming a bad assumption)."""
    state = read_state(store, ws)
    if state is None:
        raise LookupError("no customer data yet: sync a source (POST /api/sync/{source}/batch or "
                          "growthlens sync DIR)")
    prof = load_profiles(store, ws)
    if "churn_risk" not in prof.columns:
        raise LookupError("no predictions yet: they are computed by the next refresh of the customer data")
    assumptions = parse_overrides(overrides or {}, prof)
    thresholds = thresholds or HealthThresholds()
    eng, lookup = engine_for(store, ws), lookup_for(store, ws)
    retention = _retention(store, ws)
    opportunities, skipped = [], {}
    for oid in OPPORTUNITIES:
        rule = opportunity_rule(oid, assumptions[oid])
        ids = eng.members(rule, lookup)
        at = prof.index.get_indexer(pd.Index(ids, dtype=object))
        members = prof.iloc[at[at >= 0]]
        if oid == "convert_to_subscription" and retention is None:
            skipped[oid] = "no subscription retention model: too few subscriptions with a cancellation"
            continue
        opportunities.append(value_opportunity(oid, members, assumptions[oid], retention))
    return {"as_of": (state.get("as_of") or "")[:10] or None,
            "health": summarize_health(prof, thresholds).to_json(),
            "opportunities": [o.to_json() for o in rank_opportunities(opportunities)],
            "opportunities_unavailable": skipped,
            "segment_performance": _segment_performance(store, ws, prof),
            "discovered": read_discovery(store, ws),
            "models": models_json(store, ws)}
