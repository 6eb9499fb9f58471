"""Unified customer profiles: one row per resolved person, computed from every source's events.

Figures (the customers table of the product): lifetime value and orders from Shopify orders (refunded, voided
and cancelled orders excluded; ReCharge charges mirror those orders and are not counted twice), average order
value, first/last order date and days since the last order (relative to ``as_of``, by default the newest event
in the data), subscription status/start/MRR from ReCharge subscription states (MRR = price x 30 / interval days of
active subscriptions), an email engagement score, support tickets (Gorgias), reviews and referrals.

Email engagement score (0-100): recency-weighted opens and clicks, ``S = sum(w * 0.5 ** (age_days / 60))`` with
``w = 1`` per open and ``2`` per click, mapped to ``round(100 * (1 - exp(-S / 4)))``: someone opening about half of
a weekly newsletter scores in the 80s, nothing in the last few months scores near 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "PROFILE_COLUMNS",
    "compute_profiles",
    "update_profiles",
    "timeline",
    "describe_event",
    "touched_persons",
    "ENGAGEMENT_HALF_LIFE_DAYS",
]

ENGAGEMENT_HALF_LIFE_DAYS = 60.0
ENGAGEMENT_SCALE = 4.0
NAME_SOURCES = ("shopify", "recharge", "klaviyo", "gorgias", "ga4")  # whose contact details win, in order

PROFILE_COLUMNS: tuple[str, ...] = (
    "person_id", "first_name", "last_name", "email", "phone", "city", "lifetime_value", "total_orders",
    "avg_order_value", "first_order_date", "last_order_date", "days_since_last_order", "subscription_status",
    "subscription_start_date", "subscription_mrr", "email_engagement_score", "email_opens", "email_clicks",
    "support_tickets", "reviews", "referrals", "sources", "records", "events", "first_seen", "last_seen",
)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in PROFILE_COLUMNS})


def _contact(ev: pd.DataFrame) -> pd.DataFrame:
    """Per person, the most recent non-empty contact details from the most authoritative source; the email is
    the one seen in the most tools."""
    cols = ["first_name", "last_name", "email", "phone", "city"]
    rank = {s: i for i, s in enumerate(NAME_SOURCES)}
    d = ev[["person_id", "source", "time", *cols]].copy()
    d["_rank"] = d["source"].map(rank).fillna(len(rank)).astype(int)
    # for each column separately: best source first, newest first; take the first non-null
    d = d.sort_values(["person_id", "_rank", "time"], ascending=[True, True, False], kind="stable")
    out = d.groupby("person_id", sort=True)[cols].first()
    # the primary email: the address seen in the most tools (then the most recently used one)
    em = ev.loc[ev["email"].notna(), ["person_id", "source", "time", "email"]].copy()
    if len(em):
        em["email"] = em["email"].astype(str).str.strip().str.lower()
        agg = em.groupby(["person_id", "email"]).agg(n=("source", "nunique"), last=("time", "max")).reset_index()
        agg = agg.sort_values(["person_id", "n", "last"], ascending=[True, False, False], kind="stable")
        out["email"] = agg.drop_duplicates("person_id").set_index("person_id")["email"].reindex(out.index)
    return out


def compute_profiles(events: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Profiles of every person in ``events`` (canonical events with a ``person_id`` and ``record_id`` column)."""
    ev = events[events["person_id"].notna()]
    if ev.empty:
        return _empty()
    if as_of is None:
        as_of = ev["time"].max()
    as_of = pd.Timestamp(as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    persons = pd.Index(np.sort(ev["person_id"].unique()), name="person_id")
    out = pd.DataFrame(index=persons)
    out = out.join(_contact(ev))

    # orders (Shopify): refunded/voided/cancelled orders do not count
    orders = ev[ev["type"] == "order"]
    props = orders["properties"].astype(str)
    bad = props.str.contains('"financial_status":"(?:refunded|voided)"', regex=True) | \
        ~props.str.contains('"cancelled_at":null', regex=False)
    orders = orders[~bad]
    g = orders.groupby("person_id")
    out["lifetime_value"] = g["amount"].sum().round(2)
    out["total_orders"] = g.size()
    out["first_order_date"] = g["time"].min()
    out["last_order_date"] = g["time"].max()
    out["lifetime_value"] = out["lifetime_value"].fillna(0.0)
    out["total_orders"] = out["total_orders"].fillna(0).astype(int)
    out["avg_order_value"] = np.where(out["total_orders"] > 0,
                                      (out["lifetime_value"] / out["total_orders"].clip(lower=1)).round(2), 0.0)
    days = (as_of.normalize() - out["last_order_date"].dt.normalize()).dt.days
    out["days_since_last_order"] = days.astype("Int64")

    # subscriptions (ReCharge): the newest state of each subscription
    subs = ev[ev["type"] == "subscription_created"]
    if len(subs):
        sp = pd.DataFrame([json.loads(p) for p in subs["properties"]], index=subs.index)
        sp["person_id"] = subs["person_id"]
        sp["created"] = subs["time"]
        sp["status"] = sp["status"].astype(str).str.lower()
        sp["active"] = sp["status"] == "active"
        sp["mrr"] = np.where(sp["active"], sp["price"].astype(float) * 30.0 / sp["interval_days"].astype(float), 0.0)
        gs = sp.groupby("person_id")
        status = gs["status"].agg(lambda s: "active" if (s == "active").any() else
                                  ("paused" if (s == "paused").any() else "cancelled"))
        out["subscription_status"] = status
        out["subscription_start_date"] = gs["created"].min()
        out["subscription_mrr"] = gs["mrr"].sum().round(2)
    else:
        out["subscription_status"] = None
        out["subscription_start_date"] = pd.NaT
        out["subscription_mrr"] = 0.0
    out["subscription_status"] = out["subscription_status"].fillna("none")
    out["subscription_mrr"] = out["subscription_mrr"].fillna(0.0)

    # email engagement
    em = ev[ev["type"].isin(["email_opened", "email_clicked"])]
    age = (as_of - em["time"]).dt.total_seconds() / 86400.0
    w = np.where(em["type"] == "email_clicked", 2.0, 1.0) * np.power(0.5, age.clip(lower=0) /
                                                                     ENGAGEMENT_HALF_LIFE_DAYS)
    s = pd.Series(w, index=em.index).groupby(em["person_id"]).sum()
    out["email_engagement_score"] = (100 * (1 - np.exp(-s.reindex(persons).fillna(0.0) / ENGAGEMENT_SCALE))
                                     ).round().astype(int)
    counts = ev.groupby(["person_id", "type"]).size().unstack(fill_value=0)
    for col, typ in (("email_opens", "email_opened"), ("email_clicks", "email_clicked"),
                     ("support_tickets", "ticket_created"), ("reviews", "review_submitted"),
                     ("referrals", "friend_referred")):
        out[col] = counts[typ].reindex(persons).fillna(0).astype(int) if typ in counts else 0

    ga = ev.groupby("person_id")
    out["sources"] = ga["source"].agg(lambda s: ",".join(sorted(set(s))))
    out["records"] = ga["record_id"].nunique() if "record_id" in ev else 0
    out["events"] = ga.size()
    out["first_seen"] = ga["time"].min()
    out["last_seen"] = ga["time"].max()
    out = out.reset_index()
    return _text_as_object(out[list(PROFILE_COLUMNS)])


_TEXT = ("person_id", "first_name", "last_name", "email", "phone", "city", "subscription_status", "sources")


def _text_as_object(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain object dtype, so tables read back from Parquet concatenate with fresh ones."""
    df = df.copy()
    for c in ("first_order_date", "last_order_date", "subscription_start_date", "first_seen", "last_seen"):
        df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[us, UTC]")
    for c in _TEXT:
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


def update_profiles(profiles: pd.DataFrame, events: pd.DataFrame, persons: Iterable[str],
                    as_of: pd.Timestamp | None = None) -> tuple[pd.DataFrame, set[str]]:
    """Recompute only ``persons`` (e.g. those touched by a sync) and keep every other row as it was.

    Persons that no longer have events (merged into another person) are dropped. Returns the new table and the
    set of person ids recomputed.
    """
    touched = set(persons)
    if not touched:
        return profiles, set()
    sub = events[events["person_id"].isin(touched)]
    fresh = _text_as_object(compute_profiles(sub, as_of=as_of))
    keep = profiles[~profiles["person_id"].isin(touched)]
    if len(keep) and len(fresh):  # the few fresh rows take the stored table's dtypes, not the million the reverse
        for c in fresh.columns:
            if c in keep and keep[c].dtype != fresh[c].dtype:
                try:
                    fresh[c] = fresh[c].astype(keep[c].dtype)
                except (TypeError, ValueError):
                    keep = keep.assign(**{c: keep[c].astype(object)})
    frames = [f for f in (keep, fresh) if len(f)]
    new = pd.concat(frames, ignore_index=True) if frames else _empty()
    return new.sort_values("person_id", kind="stable").reset_index(drop=True), set(fresh["person_id"])


def touched_persons(old_clusters: pd.DataFrame | None, new_clusters: pd.DataFrame,
                    changed_records: Iterable[str]) -> set[str]:
    """Persons whose profile may change: those owning changed records, and every person (old or new id) whose
    set of records changed with the new resolution."""
    new_map = new_clusters.set_index("record_id")["person_id"]
    touched = {new_map[r] for r in set(changed_records) if r in new_map.index}
    if old_clusters is None or old_clusters.empty:
        return set(new_clusters["person_id"])
    m = old_clusters.merge(new_clusters, on="record_id", how="outer", suffixes=("_old", "_new"))
    diff = m[m["person_id_old"] != m["person_id_new"]]
    touched |= set(diff["person_id_old"].dropna()) | set(diff["person_id_new"].dropna())
    # a person whose id survived but gained or lost records is covered above through the moved records
    return touched


def describe_event(source: str, typ: str, props: dict[str, Any], amount: float | None) -> str:
    """A one-line human description of an event for the timeline."""
    money = f"${amount:,.2f}" if amount is not None and not pd.isna(amount) else ""
    if typ == "order":
        items = props.get("line_items") or []
        what = ", ".join(str(i.get("title")) for i in items[:3] if isinstance(i, dict))
        return f"Completed order {props.get('name') or props.get('order_id')} — {money}" + (f" ({what})" if what
                                                                                         else "")
    if typ in ("email_opened", "email_clicked", "email_received"):
        verb = {"email_opened": "Opened", "email_clicked": "Clicked", "email_received": "Received"}[typ]
        camp = props.get("Campaign Name") or props.get("Subject") or "an email"
        return f"{verb} email campaign '{camp}'"
    if typ == "email_unsubscribed":
        return "Unsubscribed from email"
    if typ == "review_submitted":
        stars = props.get("Rating")
        prod = props.get("Product Name") or "a product"
        return f"Left a {stars}-star review of {prod}" if stars else f"Reviewed {prod}"
    if typ == "friend_referred":
        return "Referred a friend" + (" (converted)" if props.get("Referral Converted") else "")
    if typ == "ticket_created":
        return f"Opened support ticket '{props.get('subject') or props.get('ticket_id')}'" + (
            f" ({props.get('messages')} messages)" if props.get("messages") else "")
    if typ == "ticket_message":
        return "Support agent replied" if props.get("from_agent") else "Wrote to support"
    if typ == "subscription_created":
        return f"Subscribed: {props.get('product_title') or 'subscription'} — {money} every " \
               f"{props.get('interval_days', 30):g} days (now {props.get('status')})"
    if typ == "subscription_cancelled":
        return "Cancelled subscription" + (f" ({props['reason']})" if props.get("reason") else "")
    if typ == "charge_paid":
        return f"Subscription charge paid — {money}"
    if typ == "charge_failed":
        return f"Subscription charge failed — {money}"
    if typ == "customer_updated":
        return f"Customer record in {source.capitalize()}"
    if typ in ("page_view", "product_viewed", "added_to_cart", "checkout_started", "web_purchase", "login"):
        label = {"page_view": "Visited the site", "product_viewed": "Viewed a product", "added_to_cart":
                 "Added to cart", "checkout_started": "Started checkout", "web_purchase": "Purchased on the site",
                 "login": "Logged in"}[typ]
        items = props.get("items") or []
        return label + (f": {items[0]}" if items and typ != "page_view" else "")
    return str(props.get("metric") or props.get("event_name") or typ).replace("_", " ").capitalize()


def timeline(events: pd.DataFrame, limit: int | None = None) -> list[dict[str, Any]]:
    """Events of one person, newest first, as JSON-ready dicts with a description."""
    ev = events.sort_values(["time", "event_id"], ascending=[False, False], kind="stable")
    if limit is not None:
        ev = ev.head(limit)
    out = []
    for r in ev.itertuples(index=False):
        props = json.loads(r.properties) if isinstance(r.properties, str) else (r.properties or {})
        amount = None if pd.isna(r.amount) else float(r.amount)
        out.append({"event_id": r.event_id, "time": pd.Timestamp(r.time).isoformat(), "source": r.source,
                    "type": r.type, "amount": amount, "description": describe_event(r.source, r.type, props, amount),
                    "properties": props})
    return out
