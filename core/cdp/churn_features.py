"""Churn features: one row per person, frozen at a cutoff, from that person's events strictly before the cutoff.

Nothing at or after the cutoff is read, and neither are the fields of older events that a source rewrites later
(a subscription's current ``status``/``cancelled_at``, an order's financial status, a ticket's open/closed state,
customer-record totals): those are snapshots of the newest revision and would leak the future into the past. So
every order placed before the cutoff counts, at its total, and a subscription counts as active at the cutoff when
it was created before it and no ``subscription_cancelled`` event for it precedes the cutoff.

Windows are counted back from the cutoff: "30d" means events in ``[cutoff - 30 days, cutoff)``. Trends compare the
recent rate with the rate before it, both per 30 days: ``trend_90 = n_90d / 3 - n_before / max(months_before, 1)``
where ``months_before`` is the person's tenure before that window, in 30-day months. "Days since" features are
missing (NaN) when the event never happened; gradient boosting reads NaN as its own branch.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

__all__ = ["FEATURES", "RFM_FEATURES", "churn_features", "active_subscriptions", "as_utc"]

RFM_FEATURES: tuple[str, ...] = ("days_since_last_order", "orders_total", "revenue_total")

FEATURES: tuple[str, ...] = (
    # relationship
    "tenure_days", "days_since_last_activity",
    # orders: recency, frequency, monetary, gaps
    *RFM_FEATURES, "orders_90d", "orders_365d", "revenue_365d", "avg_order_value", "days_since_first_order",
    "order_gap_mean", "order_gap_last", "order_overdue",
    # email engagement and its trend
    "opens_30d", "opens_90d", "opens_before_90d", "opens_trend_30", "opens_trend_90", "days_since_last_open",
    "clicks_90d", "clicks_trend_90", "days_since_last_click",
    # browsing
    "visits_30d", "visits_90d", "days_since_last_visit",
    # support
    "tickets_90d", "tickets_before_90d", "tickets_trend_90", "days_since_last_ticket",
    # advocacy
    "reviews_total", "referrals_total",
    # subscription state and billing
    "sub_active", "sub_cancelled", "sub_tenure_days", "sub_mrr", "sub_interval_days",
    "charges_paid_90d", "charges_failed_90d", "charges_failed_total", "days_since_last_charge", "charge_overdue",
)

_VISIT_TYPES = ("page_view", "product_viewed", "added_to_cart", "checkout_started", "login", "web_event")
_DAY = 86400.0


def as_utc(t: pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp in UTC (naive values are read as UTC)."""
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _props(frame: pd.DataFrame) -> pd.DataFrame:
    """Parsed JSON properties of a (small) frame, aligned with it."""
    rows = [json.loads(p) if isinstance(p, str) and p else {} for p in frame["properties"]]
    return pd.DataFrame(rows, index=frame.index)


def active_subscriptions(events: pd.DataFrame, cutoff: pd.Timestamp | str) -> pd.DataFrame:
    """Subscriptions active at ``cutoff`` by the event history alone: created before it and not cancelled before
    it. Columns ``person_id, subscription_id, created, price, interval_days`` (one row per subscription)."""
    cutoff = as_utc(cutoff)
    ev = events[events["person_id"].notna() & (events["time"] < cutoff)]
    created = ev[ev["type"] == "subscription_created"]
    if created.empty:  # typed like a full result, so that date arithmetic on it works
        return pd.DataFrame({"person_id": pd.Series(dtype=object), "subscription_id": pd.Series(dtype=object),
                             "created": pd.Series(dtype="datetime64[ns, UTC]"), "price": pd.Series(dtype=float),
                             "interval_days": pd.Series(dtype=float)})
    p = _props(created)
    subs = pd.DataFrame({
        "person_id": created["person_id"].to_numpy(),
        "subscription_id": p.get("subscription_id", pd.Series(index=p.index, dtype=object)).astype(str).to_numpy(),
        "created": created["time"].to_numpy(),
        "price": pd.to_numeric(p.get("price"), errors="coerce").to_numpy(dtype=float),
        "interval_days": pd.to_numeric(p.get("interval_days"), errors="coerce").to_numpy(dtype=float),
    })
    cancelled = ev[ev["type"] == "subscription_cancelled"]
    if len(cancelled):
        gone = set(_props(cancelled).get("subscription_id", pd.Series(dtype=object)).astype(str))
        subs = subs[~subs["subscription_id"].isin(gone)]
    subs["created"] = pd.to_datetime(subs["created"], utc=True)
    return subs.drop_duplicates("subscription_id", keep="last").reset_index(drop=True)


def churn_features(events: pd.DataFrame, cutoff: pd.Timestamp | str,
                   persons: pd.Index | list[str] | None = None) -> pd.DataFrame:
    """Features (:data:`FEATURES`) of every person with an event before ``cutoff`` (or of ``persons``), indexed by
    ``person_id``, computed only from events with ``time < cutoff``."""
    cutoff = as_utc(cutoff)
    ev = events.loc[events["person_id"].notna() & (events["time"] < cutoff),
                    ["person_id", "type", "time", "amount", "properties"]]
    ev = ev.assign(age=(cutoff - ev["time"]).dt.total_seconds().to_numpy() / _DAY)
    if persons is None:
        persons = np.sort(ev["person_id"].unique())
    idx = pd.Index(persons, name="person_id")
    out = pd.DataFrame(index=idx)

    by_type = {t: g for t, g in ev.groupby("type", sort=False)}
    empty = ev.iloc[:0]

    def of(*types: str) -> pd.DataFrame:
        parts = [by_type[t] for t in types if t in by_type]
        return pd.concat(parts) if len(parts) > 1 else (parts[0] if parts else empty)

    def count(frame: pd.DataFrame, lo: float = 0.0, hi: float = np.inf) -> pd.Series:
        """Events per person with ``lo <= age < hi`` days before the cutoff."""
        sel = frame[(frame["age"] >= lo) & (frame["age"] < hi)]
        return sel.groupby("person_id").size().reindex(idx, fill_value=0).astype(float)

    def since(frame: pd.DataFrame) -> pd.Series:
        return frame.groupby("person_id")["age"].min().reindex(idx)

    active_ev = ev[ev["type"] != "customer_updated"]  # record syncs are not something the person did
    out["tenure_days"] = ev.groupby("person_id")["age"].max().reindex(idx)
    out["days_since_last_activity"] = since(active_ev)
    months = (out["tenure_days"] / 30.0).fillna(0.0)

    def trend(frame: pd.DataFrame, window: float) -> tuple[pd.Series, pd.Series, pd.Series]:
        recent, before = count(frame, 0, window), count(frame, window)
        months_before = (months - window / 30.0).clip(lower=1.0)
        return recent, before, recent / (window / 30.0) - before / months_before

    # orders
    orders = of("order").sort_values(["person_id", "time"], kind="stable")
    og = orders.groupby("person_id")
    out["days_since_last_order"] = og["age"].min().reindex(idx)
    out["orders_total"] = count(orders)
    out["revenue_total"] = og["amount"].sum().reindex(idx).fillna(0.0)
    out["orders_90d"] = count(orders, 0, 90)
    out["orders_365d"] = count(orders, 0, 365)
    out["revenue_365d"] = orders[orders["age"] < 365].groupby("person_id")["amount"].sum().reindex(idx).fillna(0.0)
    out["avg_order_value"] = (out["revenue_total"] / out["orders_total"]).where(out["orders_total"] > 0)
    out["days_since_first_order"] = og["age"].max().reindex(idx)
    gaps = og["age"].diff().abs()  # days between consecutive orders (orders sorted by time)
    out["order_gap_mean"] = gaps.groupby(orders["person_id"]).mean().reindex(idx)
    out["order_gap_last"] = gaps.groupby(orders["person_id"]).last().reindex(idx)
    out["order_overdue"] = out["days_since_last_order"] / out["order_gap_mean"].where(out["order_gap_mean"] > 0)

    # email
    opens, clicks = of("email_opened"), of("email_clicked")
    out["opens_30d"], _, out["opens_trend_30"] = trend(opens, 30)
    out["opens_90d"], out["opens_before_90d"], out["opens_trend_90"] = trend(opens, 90)
    out["days_since_last_open"] = since(opens)
    out["clicks_90d"], _, out["clicks_trend_90"] = trend(clicks, 90)
    out["days_since_last_click"] = since(clicks)

    # browsing
    visits = of(*_VISIT_TYPES)
    out["visits_30d"] = count(visits, 0, 30)
    out["visits_90d"] = count(visits, 0, 90)
    out["days_since_last_visit"] = since(visits)

    # support
    tickets = of("ticket_created")
    out["tickets_90d"], out["tickets_before_90d"], out["tickets_trend_90"] = trend(tickets, 90)
    out["days_since_last_ticket"] = since(tickets)

    out["reviews_total"] = count(of("review_submitted"))
    out["referrals_total"] = count(of("friend_referred"))

    # subscriptions, from the event history only
    subs = active_subscriptions(ev, cutoff)
    sg = subs.groupby("person_id")
    out["sub_active"] = sg.size().reindex(idx, fill_value=0).clip(upper=1).astype(float)
    out["sub_cancelled"] = count(of("subscription_cancelled"))
    sub_age = (cutoff - subs["created"]).dt.total_seconds() / _DAY
    out["sub_tenure_days"] = sub_age.groupby(subs["person_id"]).max().reindex(idx)
    mrr = subs["price"] * 30.0 / subs["interval_days"].where(subs["interval_days"] > 0)
    out["sub_mrr"] = mrr.groupby(subs["person_id"]).sum().reindex(idx).fillna(0.0)
    out["sub_interval_days"] = sg["interval_days"].min().reindex(idx)

    paid, failed = of("charge_paid"), of("charge_failed")
    out["charges_paid_90d"] = count(paid, 0, 90)
    out["charges_failed_90d"] = count(failed, 0, 90)
    out["charges_failed_total"] = count(failed)
    out["days_since_last_charge"] = since(paid)
    # billing periods since the last successful charge (about 1 when on schedule, more when charges are skipped)
    out["charge_overdue"] = (out["days_since_last_charge"].fillna(out["sub_tenure_days"]) /
                             out["sub_interval_days"]).where(out["sub_active"] > 0)
    return out[list(FEATURES)].astype(float)
