"""GlowBeauty: a synthetic DTC skincare brand whose customer data is scattered across five tools.

Every customer is a true person with a persona (VIP subscriber, regular subscriber, at-risk subscriber, one-time
buyer, repeat buyer, churned high-value) and planted behaviour patterns (happy path, support heavy, engagement
decline). What each tool *would export* about those people is emitted in that tool's own JSON shape: Shopify
customers and orders, Klaviyo profiles and events, GA4 (BigQuery export rows), Gorgias tickets, ReCharge
subscriptions and charges. Identities are messy on purpose (email case, plus-aliases, phone formats, name typos,
anonymous web visitors identified at checkout, people with several customer accounts), and ``truth`` records the
person behind every source id plus each person's true figures so that identity resolution and profiles can be
tested against it. ``truth`` also holds what each person does in the ``future_days`` after the data ends
(:mod:`core.demo.glowbeauty_future`), drawn from a random stream of its own so that the exports do not depend on
it, against which churn predictions made on the last day can be checked.

Subscriptions end in the history as they do in that future, by the hazard of :mod:`core.demo.glowbeauty_churn`
(skipped charges, recent tickets, a refund request, fading opens, an unobserved frailty) drawn on every charge date:
the lapsed high-value subscribers are those it ended, some while still charged on schedule, most after skipping
charges, at times spread over the history; the subscribers still active at the end are those it spared.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.cdp.normalize import normalize_email
from core.demo.glowbeauty_churn import FRAILTY_SD, cancel_logit, cancel_probability, cancel_state
from core.demo.glowbeauty_future import simulate_future

__all__ = ["GlowBeautyData", "PERSONA_SHARES", "generate_glowbeauty", "write_glowbeauty", "FILES"]

# share of customers per persona (the brief's 500/2000/800/4000/200 per 10,000, the rest repeat buyers)
PERSONA_SHARES: dict[str, float] = {
    "vip_subscriber": 0.05,
    "regular_subscriber": 0.20,
    "at_risk_subscriber": 0.08,
    "one_time_buyer": 0.40,
    "repeat_buyer": 0.23,
    "churned_high_value": 0.02,
    "newsletter_only": 0.02,  # signed up for email, browsed, never bought
}

# output files: source -> {topic: relative path}
FILES: dict[str, dict[str, str]] = {
    "shopify": {"customers": "shopify/customers.ndjson", "orders": "shopify/orders.ndjson"},
    "klaviyo": {"profiles": "klaviyo/profiles.ndjson", "events": "klaviyo/events.ndjson"},
    "ga4": {"events": "ga4/events.ndjson"},
    "gorgias": {"tickets": "gorgias/tickets.ndjson"},
    "recharge": {"subscriptions": "recharge/subscriptions.ndjson", "charges": "recharge/charges.ndjson"},
}

# the churned high-value subscribers: the share who cancel while still charged on schedule (the others skip charges
# first), and when the others' declines set in: the last paid charge 50 + x days before the end, x spread evenly
# over 0-150 days for 85% of them and over 150-620 days for the rest
LAPSED_ON_SCHEDULE = 0.3
_DECLINE_RECENT, _DECLINE_EARLY, _DECLINE_RECENT_SHARE = 150.0, 620.0, 0.85

FILES_FLAT: list[str] = [rel for topics in FILES.values() for rel in topics.values()]

PRODUCTS: list[tuple[int, str, float]] = [
    (8001, "Vitamin C Brightening Serum", 58.0),
    (8002, "Gentle Hydrating Cleanser", 28.0),
    (8003, "Retinol Night Cream", 64.0),
    (8004, "SPF 50 Daily Moisturizer", 42.0),
    (8005, "Hyaluronic Acid Toner", 32.0),
    (8006, "Purifying Clay Mask", 36.0),
    (8007, "Peptide Eye Repair Cream", 48.0),
    (8008, "Glow Starter Kit", 89.0),
    (8009, "Niacinamide Pore Serum", 38.0),
    (8010, "Overnight Lip Mask", 22.0),
]

FIRST_NAMES = [
    "Emma", "Olivia", "Ava", "Sophia", "Isabella", "Mia", "Charlotte", "Amelia", "Harper", "Evelyn", "Abigail",
    "Emily", "Elizabeth", "Sofia", "Madison", "Avery", "Ella", "Scarlett", "Grace", "Chloe", "Victoria", "Riley",
    "Aria", "Lily", "Aubrey", "Zoey", "Penelope", "Layla", "Nora", "Camila", "Hannah", "Addison", "Natalie", "Leah",
    "Savannah", "Brooklyn", "Stella", "Lucy", "Paisley", "Audrey", "Claire", "Skylar", "Violet", "Bella", "Aurora",
    "Hazel", "Ellie", "Maya", "Naomi", "Ruby", "Alice", "Jade", "Priya", "Aisha", "Mei", "Lucia", "Noah", "Liam",
    "James", "Lucas", "Ethan", "Daniel", "Michael", "David", "Ryan", "Jordan", "Taylor", "Morgan", "Rachel",
    "Jessica", "Jennifer", "Ashley", "Megan", "Lauren", "Nicole", "Stephanie", "Samantha", "Katherine", "Rebecca",
    "Laura", "Julia", "Monica", "Vanessa", "Tiffany", "Alexis", "Danielle", "Brittany", "Andrea", "Diana", "Elena",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers",
    "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim",
    "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza",
    "Ruiz", "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster",
]
CITIES = [
    ("Austin", "TX", "787"), ("Denver", "CO", "802"), ("Seattle", "WA", "981"), ("Portland", "OR", "972"),
    ("Chicago", "IL", "606"), ("Boston", "MA", "021"), ("Brooklyn", "NY", "112"), ("Miami", "FL", "331"),
    ("Atlanta", "GA", "303"), ("San Diego", "CA", "921"), ("Los Angeles", "CA", "900"), ("Phoenix", "AZ", "850"),
    ("Nashville", "TN", "372"), ("Minneapolis", "MN", "554"), ("Charlotte", "NC", "282"), ("Columbus", "OH", "432"),
]
STREETS = ["Maple", "Oak", "Cedar", "Pine", "Elm", "Lake", "Hill", "Park", "Sunset", "River", "Willow", "Main"]
STREET_TYPES = ["St", "Ave", "Rd", "Blvd", "Ln", "Dr"]
DOMAINS = ["gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "aol.com"]
TICKET_SUBJECTS = {
    "pre_purchase": "Question about ingredients before I order",
    "shipping": "Where is my order?",
    "product_issue": "Reaction to the product",
    "subscription": "How do I change my subscription?",
    "refund": "Refund request",
}


@dataclass
class GlowBeautyData:
    """Everything each tool would export, as lists of JSON-ready dicts, plus the planted truth."""

    shopify_customers: list[dict[str, Any]] = field(default_factory=list)
    shopify_orders: list[dict[str, Any]] = field(default_factory=list)
    klaviyo_profiles: list[dict[str, Any]] = field(default_factory=list)
    klaviyo_events: list[dict[str, Any]] = field(default_factory=list)
    ga4_events: list[dict[str, Any]] = field(default_factory=list)
    gorgias_tickets: list[dict[str, Any]] = field(default_factory=list)
    recharge_subscriptions: list[dict[str, Any]] = field(default_factory=list)
    recharge_charges: list[dict[str, Any]] = field(default_factory=list)
    truth: dict[str, Any] = field(default_factory=dict)

    def files(self) -> dict[str, list[dict[str, Any]]]:
        """Relative output path -> records."""
        return {
            FILES["shopify"]["customers"]: self.shopify_customers,
            FILES["shopify"]["orders"]: self.shopify_orders,
            FILES["klaviyo"]["profiles"]: self.klaviyo_profiles,
            FILES["klaviyo"]["events"]: self.klaviyo_events,
            FILES["ga4"]["events"]: self.ga4_events,
            FILES["gorgias"]["tickets"]: self.gorgias_tickets,
            FILES["recharge"]["subscriptions"]: self.recharge_subscriptions,
            FILES["recharge"]["charges"]: self.recharge_charges,
        }


# --------------------------------------------------------------------------------------------------------------
# formatting helpers (each tool has its own conventions)
def _money(x: float) -> str:
    return f"{x:.2f}"


def _shopify_time(t: datetime) -> str:
    """Shopify returns shop-local times with an offset (this shop: US Eastern, -05:00)."""
    return (t - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S-05:00")


def _iso_z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_offset(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _naive(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def _phone_formats(digits: str) -> list[str]:
    a, b, c = digits[:3], digits[3:6], digits[6:]
    return [f"+1{digits}", f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"+1 {a} {b} {c}", digits]


class _Ids:
    """Deterministic id sequences in each tool's style."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.shopify_customer = 7_012_000_000_000
        self.shopify_order = 5_401_000_000_000
        self.order_number = 1000
        self.line_item = 13_900_000_000_000
        self.recharge_customer = 61_000_000
        self.recharge_sub = 310_000_000
        self.recharge_charge = 820_000_000
        self.gorgias_customer = 140_000_000
        self.gorgias_ticket = 21_000_000
        self.gorgias_message = 480_000_000
        self.klaviyo_event = 0

    def next(self, name: str, step_max: int = 1) -> int:
        step = int(self.rng.integers(1, step_max + 1)) if step_max > 1 else 1
        setattr(self, name, getattr(self, name) + step)
        return getattr(self, name)

    def klaviyo_profile(self) -> str:
        alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
        return "01H" + "".join(alphabet[i] for i in self.rng.integers(0, 32, 23))


def _typo(s: str, rng: np.random.Generator) -> str:
    """Swap two adjacent inner letters (a realistic keyboard typo)."""
    if len(s) < 4:
        return s + s[-1]
    i = int(rng.integers(1, len(s) - 2))
    out = s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    return out if out != s else s[:i] + s[i] + s[i] + s[i + 1 :]


# --------------------------------------------------------------------------------------------------------------
def generate_glowbeauty(seed: int = 7, customers: int = 10000, end: date | None = None,
                        future_days: int = 90) -> GlowBeautyData:
    """Generate two years of GlowBeauty data for ``customers`` true people, ending ``end`` (default yesterday),
    with each person's outcome over the ``future_days`` after ``end`` in the truth (0: none)."""
    return _generate(seed, customers, end, future_days=future_days)


def _generate(seed: int, customers: int, end: date | None,
              sink: Callable[[GlowBeautyData], None] | None = None, flush_every: int = 5000,
              future_days: int = 90) -> GlowBeautyData:
    """The generator. With a ``sink``, every ``flush_every`` customers the rows and the per-person truth
    (``truth["persons"]``, ``truth["records"]``) generated so far are handed to ``sink`` and dropped, so memory
    stays flat however many customers are generated; the output is the same as without a sink."""
    if customers < 20:
        raise ValueError(f"customers must be at least 20 (got {customers})")
    if future_days < 0:
        raise ValueError(f"future_days must not be negative (got {future_days})")
    rng = np.random.default_rng(seed)
    # the future after ``end`` comes from a stream of its own: with or without it, the exports are identical
    future_rng = np.random.default_rng([seed, 7919]) if future_days else None
    end = end or (datetime.now(UTC).date() - timedelta(days=1))
    days = 730
    start = end - timedelta(days=days - 1)
    t0 = datetime(start.year, start.month, start.day, tzinfo=UTC)
    ids = _Ids(rng)
    data = GlowBeautyData()

    def at(day: float) -> datetime:
        """Day offset (fractional) from the start → UTC datetime within the window, during waking hours."""
        d = int(np.clip(np.floor(day), 0, days - 1))
        secs = int(rng.integers(12 * 3600, 86400))  # 7am-7pm US Eastern, same UTC calendar day
        return t0 + timedelta(days=d, seconds=secs)

    # personas, deterministic counts
    names = list(PERSONA_SHARES)
    counts = {p: int(round(PERSONA_SHARES[p] * customers)) for p in names}
    counts["one_time_buyer"] += customers - sum(counts.values())
    personas = [p for p in names for _ in range(counts[p])]
    rng.shuffle(personas)
    # the showcase person first: a VIP subscriber with three ids across tools
    vip_idx = personas.index("vip_subscriber")
    personas[0], personas[vip_idx] = personas[vip_idx], personas[0]

    campaign_days = np.arange(3, days, 7)  # weekly newsletter (Thursdays-ish)
    used_emails: set[str] = set()
    used_names: set[tuple[str, str]] = {("Sarah", "Johnson")}
    persons: dict[str, dict[str, Any]] = {}
    records: dict[str, str] = {}
    messy: dict[str, list[str]] = {k: [] for k in (
        "email_case", "plus_alias", "phone_formats", "name_typo", "anonymous_identified", "three_ids")}
    patterns_index: dict[str, list[str]] = {"happy_path": [], "support_heavy": [], "engagement_decline": []}
    n_lapsed = 0  # churned high-value subscribers so far

    def flush() -> None:
        data.truth = {"persons": persons, "records": records}
        sink(data)
        for rows in data.files().values():
            rows.clear()
        persons.clear()
        records.clear()
        data.truth = {}

    for i, persona in enumerate(personas):
        if sink is not None and i and i % flush_every == 0:
            flush()
        pid = f"P{i + 1:06d}"
        # ---- who they are ------------------------------------------------------------------------------------
        if i == 0:
            first, last = "Sarah", "Johnson"
        else:
            while True:
                first = FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))]
                last = LAST_NAMES[int(rng.integers(len(LAST_NAMES)))]
                if (first, last) != ("Sarah", "Johnson"):
                    break
        domain = DOMAINS[int(rng.integers(len(DOMAINS)))] if i else "gmail.com"
        style = int(rng.integers(3))
        local = [f"{first}.{last}", f"{first[0]}{last}", f"{first}{last[:3]}"][style].lower()
        email = f"{local}@{domain}"
        n = 1
        while normalize_email(email) in used_emails:  # distinct mailboxes (Gmail ignores dots): distinct people
            n += 1
            email = f"{local}{n}@{domain}"
        used_emails.add(normalize_email(email))
        used_names.add((first, last))
        phone = f"{int(rng.integers(201, 990))}{int(rng.integers(200, 1000))}{int(rng.integers(0, 10000)):04d}"
        city, state, zip3 = CITIES[int(rng.integers(len(CITIES)))]
        postcode = f"{zip3}{int(rng.integers(0, 100)):02d}"
        address = f"{int(rng.integers(10, 9999))} {STREETS[int(rng.integers(len(STREETS)))]} " \
                  f"{STREET_TYPES[int(rng.integers(len(STREET_TYPES)))]}"

        # ---- patterns ------------------------------------------------------------------------------------------
        patterns: list[str] = []
        if persona in ("vip_subscriber", "regular_subscriber") and rng.random() < (0.6 if persona[0] == "v" else 0.3):
            patterns.append("happy_path")
        if persona == "at_risk_subscriber":
            patterns.append("engagement_decline")
        support_p = {"at_risk_subscriber": 0.35, "churned_high_value": 0.4, "one_time_buyer": 0.03,
                     "regular_subscriber": 0.04, "repeat_buyer": 0.04}.get(persona, 0.0)
        if rng.random() < support_p:
            patterns.append("support_heavy")
        for p in patterns:
            patterns_index[p].append(pid)

        # newsletter-only people never identify themselves on the site: no analytics trail can be tied to them
        n_sessions = {"vip_subscriber": 10, "regular_subscriber": 6, "at_risk_subscriber": 4, "one_time_buyer": 2,
                      "repeat_buyer": 4, "churned_high_value": 4, "newsletter_only": 0}[persona]

        # ---- purchases -----------------------------------------------------------------------------------------
        orders: list[tuple[float, list[tuple[int, str, float]], bool]] = []  # (day, items, is_subscription)
        sub: dict[str, Any] | None = None

        def bundle(k_lo: int, k_hi: int) -> list[tuple[int, str, float]]:
            k = int(rng.integers(k_lo, k_hi + 1))
            idx = rng.choice(len(PRODUCTS), size=k, replace=False)
            return [PRODUCTS[j] for j in sorted(idx)]

        signup_lead = rng.uniform(0, 30)  # the newsletter sign-up comes up to a month before the first order
        opened_early: np.ndarray | None = None  # newsletters opened, when a subscription's life needed them first
        ticket_plan: list[tuple[float, str]] | None = None  # (day, kind) of support tickets, likewise
        if persona in ("vip_subscriber", "regular_subscriber", "at_risk_subscriber", "churned_high_value"):
            fading = persona == "at_risk_subscriber"
            if persona == "vip_subscriber":
                s_day, interval, items = rng.uniform(0, days - 420), 30, bundle(2, 3)
                last_paid = float(days)
            elif persona == "regular_subscriber":
                s_day, interval, items = rng.uniform(0, days - 150), 60, bundle(1, 2)
                last_paid = float(days)
            elif persona == "at_risk_subscriber":  # in decline: the last charge 60-120 days ago, skipped since
                s_day, interval, items = rng.uniform(0, days - 330), 30, bundle(1, 2)
                last_paid = days - rng.uniform(60, 120)
                s_day = last_paid - interval * ((last_paid - s_day) // interval)  # counted back from it
            else:  # lapsed: spread evenly over both kinds and over time (low-discrepancy sequences, jittered)
                n_lapsed += 1
                u = (n_lapsed * 0.6180339887 + 0.1 * rng.random()) % 1.0
                if (n_lapsed * 0.7548776662) % 1.0 < LAPSED_ON_SCHEDULE:  # cancelling on schedule, as regulars do
                    s_day, interval, items = rng.uniform(200, days - 150), 60, bundle(1, 2)
                    last_paid = float(days)
                else:  # in decline first, as the at-risk subscribers are: skipped charges, tickets, fading opens
                    interval, items, fading = 30, bundle(1, 2), True
                    # declines set in throughout the history, most of them lately as the subscriber base has grown
                    r = _DECLINE_RECENT_SHARE
                    back = u / r * _DECLINE_RECENT if u < r else \
                        _DECLINE_RECENT + (u - r) / (1 - r) * (_DECLINE_EARLY - _DECLINE_RECENT)
                    last_paid = days - 50 - back
                    s_day = rng.uniform(0, max(last_paid - 150, 1.0))
            charge_days, cancel_day, opened_early, ticket_plan, frailty = _subscription_life(
                rng, persona=persona, patterns=patterns, s_day=float(s_day), interval=interval,
                last_paid=float(last_paid), days=days, fading=fading,
                cds=campaign_days[campaign_days >= max(0.0, s_day - signup_lead)])
            for d in charge_days:
                orders.append((float(d), items, True))
            if persona == "vip_subscriber":  # occasional add-on orders
                for d in rng.uniform(s_day, days - 1, int(rng.integers(1, 5))):
                    orders.append((float(d), bundle(1, 2), False))
            price = sum(p for _, _, p in items)
            sub = {"start_day": float(s_day), "interval": interval, "items": items, "price": price,
                   "status": "cancelled" if cancel_day is not None else "active", "cancel_day": cancel_day,
                   "frailty": frailty}
        elif persona == "one_time_buyer":
            orders.append((rng.uniform(0, days - 1), bundle(1, 4), False))
        elif persona == "repeat_buyer":
            for d in np.sort(rng.uniform(0, days - 1, int(rng.integers(2, 6)))):
                orders.append((float(d), bundle(1, 3), False))
        orders.sort(key=lambda o: o[0])
        first_order_day = orders[0][0] if orders else rng.uniform(0, days - 30)
        signup_day = max(0.0, first_order_day - signup_lead)

        # ---- messy identity decisions ---------------------------------------------------------------------------
        case_email = rng.random() < 0.15
        plus_alias = domain == "gmail.com" and rng.random() < 0.12
        name_typo = rng.random() < 0.03
        three_ids = (i == 0) or (persona in ("vip_subscriber", "regular_subscriber") and rng.random() < 0.02)
        shop_email = email
        if case_email:
            shop_email = ".".join(w.capitalize() for w in email.split("@")[0].split(".")) + "@" + domain.capitalize()
            messy["email_case"].append(pid)
        klav_email = email.replace("@", "+glow@") if plus_alias else email
        if plus_alias:
            messy["plus_alias"].append(pid)
        if name_typo:
            messy["name_typo"].append(pid)
        fmts = _phone_formats(phone)
        tool_phone = {t: fmts[int(rng.integers(len(fmts)))] for t in ("shopify", "klaviyo", "recharge", "shopify2")}
        if len({tool_phone[t] for t in ("shopify", "klaviyo", "recharge")}) > 1:
            messy["phone_formats"].append(pid)
        work_email = f"{first[0].lower()}{last.lower()}@{['acme-corp.com', 'northwind.io', 'globex.com'][i % 3]}"
        if three_ids:
            messy["three_ids"].append(pid)

        ids_of: dict[str, list[str]] = {"shopify": [], "klaviyo": [], "recharge": [], "gorgias": [], "ga4": []}
        pseudo = f"{int(rng.integers(10**9, 10**10))}.{int((t0 + timedelta(days=signup_day)).timestamp())}"
        ids_of["ga4"].append(pseudo)

        # ---- Shopify customer(s) -------------------------------------------------------------------------------
        shop_ids: list[int] = []
        n_accounts = 2 if three_ids and orders else (1 if orders else 0)
        for _ in range(n_accounts):
            cid = ids.next("shopify_customer", 977)
            shop_ids.append(cid)
            ids_of["shopify"].append(str(cid))
            records[f"shopify:{cid}"] = pid
        # with two accounts, the second one (a guest checkout with a work email) places the subscription's orders
        order_ids_total = 0.0
        n_orders = 0
        order_rows: list[dict[str, Any]] = []
        seen_sub = False
        for d, items, is_sub in orders:
            acc = 1 if (len(shop_ids) == 2 and is_sub) else 0
            cid = shop_ids[acc]
            o_email = work_email if acc == 1 else shop_email
            o_phone = tool_phone["shopify2"] if acc == 1 else tool_phone["shopify"]
            t = at(d)
            oid = ids.next("shopify_order", 9973)
            num = ids.next("order_number", 1)
            total = round(sum(p for _, _, p in items), 2)
            order_ids_total += total
            n_orders += 1
            line_items = [{"id": ids.next("line_item", 311), "product_id": pid_, "title": title, "quantity": 1,
                           "price": _money(price), "sku": f"GB-{pid_}"} for pid_, title, price in items]
            web = not (is_sub and seen_sub)  # recurring subscription orders are created by ReCharge, not a visit
            seen_sub = seen_sub or is_sub
            order = {
                "id": oid, "name": f"#{num}", "order_number": num, "email": o_email,
                "created_at": _shopify_time(t), "processed_at": _shopify_time(t),
                "updated_at": _shopify_time(t + timedelta(hours=2)),
                "total_price": _money(total), "subtotal_price": _money(total), "total_tax": "0.00",
                "currency": "USD", "financial_status": "paid",
                "source_name": "web" if web else "subscription_contract",
                "tags": "Subscription Recurring Order" if (is_sub and not web) else
                        ("Subscription First Order" if is_sub else ""),
                "customer": {"id": cid, "email": o_email, "first_name": first, "last_name": last, "phone": o_phone},
                "line_items": line_items,
                "shipping_address": {"first_name": first, "last_name": last, "address1": address, "city": city,
                                     "province_code": state, "zip": postcode, "country_code": "US", "phone": o_phone},
                "note_attributes": [{"name": "_ga_client_id", "value": pseudo}] if web else [],
            }
            order_rows.append(order)
            if web:  # the browsing session that led to this order
                sess = int(rng.integers(10**9, 2 * 10**9))
                ts = int(t.timestamp() * 1e6) - int(rng.integers(5, 40)) * 60_000_000
                steps = ["page_view", "view_item", "add_to_cart", "begin_checkout", "purchase"]
                for s_i, name in enumerate(steps):
                    ev_t = ts + s_i * int(rng.integers(20, 240)) * 1_000_000
                    if name == "purchase":
                        ev_t = int(t.timestamp() * 1e6)
                    row = _ga4_row(name, ev_t, pseudo, str(cid) if name in ("begin_checkout", "purchase") else None,
                                   sess, items, total if name == "purchase" else None,
                                   f"#{num}" if name == "purchase" else None)
                    data.ga4_events.append(row)
        data.shopify_orders.extend(order_rows)
        for acc, cid in enumerate(shop_ids):
            c_email = work_email if acc == 1 else shop_email
            c_phone = tool_phone["shopify2"] if acc == 1 else tool_phone["shopify"]
            mine = [o for o in order_rows if o["customer"]["id"] == cid]
            created = min(o["created_at"] for o in mine) if mine else _shopify_time(at(first_order_day))
            data.shopify_customers.append({
                "id": cid, "email": c_email, "first_name": first, "last_name": last, "phone": c_phone,
                "created_at": created, "updated_at": max(o["updated_at"] for o in mine) if mine else created,
                "orders_count": len(mine), "total_spent": _money(sum(float(o["total_price"]) for o in mine)),
                "state": "enabled", "tags": "", "accepts_marketing": True,
                "default_address": {"address1": address, "city": city, "province_code": state, "zip": postcode,
                                    "country_code": "US", "phone": c_phone},
            })
        sessions = list(rng.uniform(signup_day, days - 1, int(rng.poisson(n_sessions))))
        if orders and orders[0][0] - signup_day > 1:  # an anonymous visit before the first checkout
            sessions.append(float(rng.uniform(signup_day, orders[0][0] - 1)))
            messy["anonymous_identified"].append(pid)

        # ---- GA4 browsing (anonymous until the first checkout) -------------------------------------------------
        for d in sessions:
            t = at(d)
            logged_in = bool(orders) and d > first_order_day and rng.random() < 0.5
            uid = str(shop_ids[0]) if logged_in else None
            sess = int(rng.integers(10**9, 2 * 10**9))
            items = [PRODUCTS[int(rng.integers(len(PRODUCTS)))]]
            for s_i, name in enumerate(["page_view", "view_item"][: int(rng.integers(1, 3))]):
                data.ga4_events.append(_ga4_row(name, int(t.timestamp() * 1e6) + s_i * 45_000_000, pseudo, uid,
                                                sess, items, None, None))

        # ---- Klaviyo profile and email engagement ---------------------------------------------------------------
        kid = ids.klaviyo_profile()
        ids_of["klaviyo"].append(kid)
        records[f"klaviyo:{kid}"] = pid
        k_first, k_last = first, (_typo(last, rng) if name_typo else last)
        profile = {"id": kid, "email": klav_email, "phone_number": tool_phone["klaviyo"], "first_name": k_first,
                   "last_name": k_last}
        data.klaviyo_profiles.append({
            "type": "profile", "id": kid,
            "attributes": {"email": klav_email, "phone_number": tool_phone["klaviyo"], "first_name": k_first,
                           "last_name": k_last, "created": _iso_offset(at(signup_day)),
                           "updated": _iso_offset(at(signup_day)),
                           "location": {"address1": address, "city": city, "region": state, "zip": postcode,
                                        "country": "United States"},
                           "properties": {"Accepts Marketing": True}},
        })
        base_open = {"vip_subscriber": 0.45, "regular_subscriber": 0.28, "at_risk_subscriber": 0.40,
                     "one_time_buyer": 0.18, "repeat_buyer": 0.24, "churned_high_value": 0.30,
                     "newsletter_only": 0.22}[persona]
        cds = campaign_days[campaign_days >= signup_day]
        if opened_early is not None:
            opened = opened_early
        else:
            p_open = np.full(len(cds), base_open)
            if "engagement_decline" in patterns and len(cds):
                # high opens first, medium next, low recently (thirds of the person's email history)
                rel = (cds - cds[0]) / max(cds[-1] - cds[0], 1)
                p_open = np.where(rel < 1 / 3, 0.5, np.where(rel < 2 / 3, 0.22, 0.02))
            opened = rng.random(len(cds)) < p_open
        clicked = opened & (rng.random(len(cds)) < 0.22)
        n_open = n_click = 0
        for c_day, o, c in zip(cds, opened, clicked, strict=True):
            if not o:
                continue
            camp = f"Weekly Glow #{int(c_day // 7) + 1}"
            t = at(c_day + rng.uniform(0, 3))
            data.klaviyo_events.append(_klaviyo_event(ids, "Opened Email", t, profile, {"Campaign Name": camp,
                                                                                       "Subject": camp}))
            n_open += 1
            if c:
                data.klaviyo_events.append(_klaviyo_event(ids, "Clicked Email", t + timedelta(minutes=2), profile,
                                                          {"Campaign Name": camp, "URL": "https://glowbeauty.example/"}))
                n_click += 1
        # reviews and referrals (pushed to Klaviyo by the reviews and referral apps)
        n_reviews = {"vip_subscriber": int(rng.integers(2, 9)), "regular_subscriber": int(rng.integers(0, 3)),
                     "repeat_buyer": int(rng.random() < 0.3)}.get(persona, 0)
        n_refs = {"vip_subscriber": int(rng.integers(1, 6)), "regular_subscriber": int(rng.random() < 0.2)}.get(
            persona, 0)
        if "happy_path" in patterns:
            n_reviews, n_refs = max(n_reviews, 1), max(n_refs, 1)
        if not orders:
            n_reviews = n_refs = 0
        for _ in range(n_reviews):
            d = rng.uniform(first_order_day + 5, days - 1) if first_order_day + 5 < days - 1 else days - 1
            title = PRODUCTS[int(rng.integers(len(PRODUCTS)))][1]
            data.klaviyo_events.append(_klaviyo_event(ids, "Submitted Review", at(d), profile,
                                                      {"Rating": int(rng.integers(4, 6)), "Product Name": title}))
        for _ in range(n_refs):
            d = rng.uniform(first_order_day + 10, days - 1) if first_order_day + 10 < days - 1 else days - 1
            data.klaviyo_events.append(_klaviyo_event(ids, "Referred Friend", at(d), profile,
                                                      {"Referral Converted": bool(rng.random() < 0.6)}))

        # ---- ReCharge subscription and charges ------------------------------------------------------------------
        mrr = 0.0
        if sub is not None:
            rcid = ids.next("recharge_customer", 53)
            ids_of["recharge"].append(str(rcid))
            records[f"recharge:{rcid}"] = pid
            r_email = work_email if three_ids and len(shop_ids) == 2 else email
            sid = ids.next("recharge_sub", 17)
            created = at(sub["start_day"])
            cancelled = at(sub["cancel_day"]) if sub["cancel_day"] is not None else None
            data.recharge_subscriptions.append({
                "id": sid, "customer_id": rcid, "email": r_email, "status": sub["status"].upper(),
                "price": _money(sub["price"]), "quantity": 1,
                "product_title": " + ".join(t for _, t, _ in sub["items"]),
                "order_interval_frequency": str(sub["interval"]), "order_interval_unit": "day",
                "created_at": _naive(created),
                "updated_at": _naive(cancelled or created), "cancelled_at": _naive(cancelled) if cancelled else None,
                "cancellation_reason": "too much product" if cancelled else None,
            })
            sub_orders = [o for o in order_rows if "Subscription" in o["tags"]]
            for o in sub_orders:
                t = pd_time(o["created_at"])
                data.recharge_charges.append({
                    "id": ids.next("recharge_charge", 7), "customer_id": rcid, "email": r_email,
                    "first_name": first, "last_name": last, "status": "SUCCESS", "type": "RECURRING",
                    "total_price": o["total_price"], "processed_at": _naive(t), "scheduled_at": _naive(t),
                    "shopify_order_id": str(o["id"]), "subscription_id": sid,
                    "billing_address": {"address1": address, "city": city, "zip": postcode,
                                        "phone": tool_phone["recharge"]},
                })
            if sub["status"] == "active":
                mrr = sub["price"] * 30.0 / sub["interval"]

        # ---- Gorgias tickets -------------------------------------------------------------------------------------
        if ticket_plan is None:
            ticket_plan = _plan_tickets(rng, persona, patterns, orders, first_order_day, days)
        n_tickets = len(ticket_plan)
        gorgias_cid = None
        if n_tickets:
            gorgias_cid = ids.next("gorgias_customer", 29)
            ids_of["gorgias"].append(str(gorgias_cid))
            records[f"gorgias:{gorgias_cid}"] = pid
        for d, kind in ticket_plan:
            t = at(d)
            n_msgs = int(rng.integers(3, 7)) if "support_heavy" in patterns else int(rng.integers(1, 3))
            g_last = _typo(last, rng) if name_typo else last
            msgs = []
            for m in range(n_msgs):
                agent = m % 2 == 1
                msgs.append({"id": ids.next("gorgias_message", 3), "from_agent": agent, "channel": "email",
                             "sender": {"email": "support@glowbeauty.example" if agent else email},
                             "body_text": "Thanks for reaching out, we are on it." if agent else
                             TICKET_SUBJECTS[kind],
                             "created_datetime": _iso_offset(t + timedelta(hours=5 * m))})
            data.gorgias_tickets.append({
                "id": ids.next("gorgias_ticket", 11), "channel": "email", "via": "email",
                "status": "closed" if d < days - 7 else "open", "subject": TICKET_SUBJECTS[kind],
                "created_datetime": _iso_offset(t), "updated_datetime": _iso_offset(t + timedelta(hours=5 * n_msgs)),
                "customer": {"id": gorgias_cid, "email": email, "name": f"{first} {g_last}", "firstname": first,
                             "lastname": g_last},
                "messages": msgs, "tags": [{"name": kind}],
            })

        if orders:
            records[f"ga4:{pseudo}"] = pid
        else:
            ids_of["ga4"].clear()
        persons[pid] = {
            "persona": persona, "patterns": patterns, "first_name": first, "last_name": last, "email": email,
            "phone": f"+1{phone}", "city": city, "postcode": postcode,
            "lifetime_value": round(order_ids_total, 2), "total_orders": n_orders,
            "first_order_date": at_date(t0, orders[0][0]) if orders else None,
            "last_order_date": at_date(t0, orders[-1][0]) if orders else None,
            "subscription_status": sub["status"] if sub else "none",
            "subscription_start_date": at_date(t0, sub["start_day"]) if sub else None,
            "subscription_mrr": round(mrr, 2),
            "email_opens": n_open, "email_clicks": n_click,
            "support_tickets": n_tickets, "reviews": n_reviews, "referrals": n_refs,
            "ids": ids_of,
        }
        if future_rng is not None:
            persons[pid].update(simulate_future(
                future_rng, persona=persona, patterns=patterns, orders=orders, sub=sub, tickets=ticket_plan,
                campaign_days=cds, opened=opened, days=days, horizon=future_days))

    data.truth = {
        "generator": "glowbeauty", "seed": seed, "customers": customers,
        "start": start.isoformat(), "end": end.isoformat(),
        "persona_counts": counts, "patterns": patterns_index, "messy": messy,
        **({"future_horizon_days": future_days} if future_days else {}),
        "persons": persons, "records": records,
        "notes": {
            "records": "keys are '<source>:<native customer id>' (ga4: user_pseudo_id) -> true person id",
            "lifetime_value": "sum of the person's Shopify order total_price (subscription orders included once; "
                              "ReCharge charges mirror those orders)",
            "subscription_mrr": "price x 30 / interval days for active subscriptions",
            **({"future": "future_orders, future_revenue: orders and their total in the future_horizon_days after "
                          "end; churned_subscription: an active subscription cancelled within it (null without "
                          "one); purchase_churn: no order within it"} if future_days else {}),
        },
    }
    if sink is not None:
        sink(data)
    return data


def _plan_tickets(rng: np.random.Generator, persona: str, patterns: list[str],
                  orders: list[tuple[float, Any, bool]], first_order_day: float, days: int) -> list[tuple[float, str]]:
    """The (day, kind) of a person's support tickets over the history."""
    n_tickets = 0
    if "support_heavy" in patterns:
        n_tickets = int(rng.integers(3, 7))
    elif persona == "vip_subscriber":
        n_tickets = int(rng.integers(0, 3))
    elif persona == "at_risk_subscriber":
        n_tickets = int(rng.integers(1, 4))
    elif orders and rng.random() < 0.12:
        n_tickets = 1
    last_order_day = orders[-1][0] if orders else days - 1
    plan = []
    for k in range(n_tickets):
        if persona == "at_risk_subscriber" or "support_heavy" in patterns:
            # increasing: tickets concentrate in the recent months
            lo = max(first_order_day, last_order_day - 120)
            d = lo + (days - 1 - lo) * (1 - rng.random() ** 2)
        else:
            d = rng.uniform(first_order_day, days - 1)
        kind = "refund" if ("support_heavy" in patterns and k == n_tickets - 1) else \
            ["shipping", "product_issue", "subscription", "pre_purchase"][int(rng.integers(4))]
        plan.append((float(d), kind))
    return plan


def _subscription_life(rng: np.random.Generator, *, persona: str, patterns: list[str], s_day: float, interval: int,
                       last_paid: float, days: int, cds: np.ndarray, fading: bool
                       ) -> tuple[list[float], float | None, np.ndarray, list[tuple[float, str]], float]:
    """A subscriber's history under the shared cancellation hazard (:mod:`core.demo.glowbeauty_churn`).

    The subscription is charged every ``interval`` days from ``s_day`` up to ``last_paid``, the charges due after
    it are skipped; support tickets and newsletter opens follow the persona (a lapsing subscriber's, like an at-risk
    one's, fade towards the decline, with tickets around it). On every charge date the hazard is drawn for the period
    up to the next. The persona says how the history ends (cancelled for a lapsed high-value subscriber, still
    active for the others), so a life is drawn again, frailty, tickets and opens included, until it ends that way:
    the history is the hazard's world conditioned on its personas, and those who lasted are those it spared.
    Returns the paid charge days, the cancellation day (``None``: active), which newsletters ``cds`` were opened,
    the tickets (day, kind) and the frailty."""
    due = s_day + interval * np.arange(int((days - s_day) // interval) + 1)
    due = due[due < days]  # a charge due on the last day is taken on it
    last_paid = float(due[due <= last_paid + 1e-6].max())
    on_time = due <= last_paid
    paid = [(float(d), None, True) for d, ok in zip(due, on_time, strict=True) if ok]
    lapsing = persona == "churned_high_value"
    heavy = "support_heavy" in patterns
    p_open: np.ndarray | float = {"vip_subscriber": 0.45}.get(persona, 0.28)
    if fading and len(cds):  # high, medium, low: thirds of the email history (a lapsing one's up to its decline)
        rel = (cds - cds[0]) / max((last_paid if lapsing else cds[-1]) - cds[0], 1.0)
        p_open = np.where(rel < 1 / 3, 0.5, np.where(rel < 2 / 3, 0.22, 0.02))
    cancel: float | None = None
    for _ in range(60):
        frailty = float(rng.normal(0.0, FRAILTY_SD))  # unobserved: how readily this person cancels
        if lapsing and not fading:  # cancelling on schedule: tickets at any time
            n_tickets = int(rng.integers(3, 7)) if heavy else int(rng.integers(0, 3))
            tickets = [(float(rng.uniform(s_day, days - 1)), "refund" if heavy and k == n_tickets - 1 else
                        ["shipping", "product_issue", "subscription", "pre_purchase"][int(rng.integers(4))])
                       for k in range(n_tickets)]
        elif lapsing:  # tickets shortly before the decline and as it goes on
            n_tickets = int(rng.integers(3, 7)) if heavy else int(rng.integers(1, 4))
            lo, hi = max(s_day, last_paid - 45), min(last_paid + 2 * interval, days - 1)
            tickets = [(float(lo + (hi - lo) * (1 - rng.random() ** 2)),
                        "refund" if heavy and k == n_tickets - 1 else
                        ["shipping", "product_issue", "subscription", "pre_purchase"][int(rng.integers(4))])
                       for k in range(n_tickets)]
        else:
            tickets = _plan_tickets(rng, persona, patterns, paid, s_day, days)
        ticket_days = [d for d, _ in tickets]
        refund_day = next((d for d, kind in tickets if kind == "refund"), None)
        opened = rng.random(len(cds)) < p_open
        cancel, last = None, s_day
        for d, ok in zip(due, on_time, strict=True):
            last = float(d) if ok else last
            state = cancel_state(float(d) + 1.0, last_charge=last, interval=interval, ticket_days=ticket_days,
                                 refund_day=refund_day, campaign_days=cds, opened=opened)
            span = min(float(interval), days - float(d))  # the period up to the next charge or the end
            if rng.random() < cancel_probability(cancel_logit(persona, state, frailty), span):
                cancel = float(d) + span * float(rng.beta(1.0, 2.0))  # the disengaged go early in the period
                break
        if (cancel is not None) == lapsing:
            break
    if not lapsing:  # (rarely) spared by the last draw regardless
        cancel = None
    elif cancel is None:  # likewise: cancelled at the last charge date
        cancel = float(due[-1])
    if cancel is not None:  # a newsletter opened now and then after the cancellation
        opened = np.where(cds > cancel, rng.random(len(cds)) < 0.06, opened)
    return [d for d, _, _ in paid if cancel is None or d <= cancel], cancel, opened, tickets, frailty


def at_date(t0: datetime, day: float) -> str:
    """The calendar date (UTC) of a day offset, consistent with the event times generated for it."""
    return (t0 + timedelta(days=int(np.floor(day)))).date().isoformat()


def pd_time(shopify_ts: str) -> datetime:
    """Parse the Shopify timestamp format used above back to UTC."""
    return datetime.strptime(shopify_ts, "%Y-%m-%dT%H:%M:%S-05:00").replace(tzinfo=UTC) + timedelta(hours=5)


def _ga4_row(name: str, ts_us: int, pseudo: str, user_id: str | None, session: int,
             items: list[tuple[int, str, float]], revenue: float | None, txn: str | None) -> dict[str, Any]:
    """One row of the GA4 BigQuery export."""
    params = [{"key": "ga_session_id", "value": {"int_value": session}},
              {"key": "page_location", "value": {"string_value": "https://glowbeauty.example/"
                                                 + ("products" if name != "page_view" else "")}}]
    row: dict[str, Any] = {
        "event_date": datetime.fromtimestamp(ts_us / 1e6, tz=UTC).strftime("%Y%m%d"),
        "event_timestamp": ts_us, "event_name": name, "user_pseudo_id": pseudo, "user_id": user_id,
        "event_params": params, "platform": "WEB",
        "device": {"category": "mobile" if session % 3 else "desktop"},
        "items": [{"item_id": f"GB-{p}", "item_name": t, "price": price} for p, t, price in items]
        if name != "page_view" else [],
    }
    if txn is not None:
        row["ecommerce"] = {"transaction_id": txn, "purchase_revenue": round(revenue or 0.0, 2)}
    return row


def _klaviyo_event(ids: _Ids, metric: str, t: datetime, profile: dict[str, Any],
                   props: dict[str, Any]) -> dict[str, Any]:
    """A Klaviyo event as the Events API returns it with its metric and profile included."""
    ids.klaviyo_event += 1
    eid = f"4{ids.klaviyo_event:011d}"
    return {
        "type": "event", "id": eid,
        "attributes": {"timestamp": int(t.timestamp()), "datetime": _iso_offset(t), "event_properties": props,
                       "uuid": f"{eid}-0000-4000-8000-{ids.klaviyo_event:012d}"},
        "metric": {"type": "metric", "id": "M" + "".join(w[0] for w in metric.split()), "name": metric},
        "profile": dict(profile),
    }


def write_glowbeauty(out_dir: str | Path, seed: int = 7, customers: int = 10000, end: date | None = None,
                     flush_every: int = 5000, future_days: int = 90) -> Path:
    """Generate GlowBeauty and write one NDJSON file per tool export plus ``truth.json`` into ``out_dir``.

    Rows are written as they are generated (every ``flush_every`` customers), so a million customers need no more
    memory than five thousand; the per-person truth is spooled to temporary files and joined into ``truth.json``
    at the end."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    handles: dict[str, Any] = {}
    for rel in FILES_FLAT:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        handles[rel] = (out / rel).open("w")
    spool = {k: (out / f".truth-{k}.part").open("w+") for k in ("persons", "records")}
    first = {"persons": True, "records": True}
    header: dict[str, Any] = {}

    def sink(data: GlowBeautyData) -> None:
        for rel, rows in data.files().items():
            f = handles[rel]
            f.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        for k in ("persons", "records"):
            items = data.truth.get(k) or {}
            if not items:
                continue
            body = ",\n".join(f"{json.dumps(key)}:{json.dumps(v, separators=(',', ':'))}" for key, v in items.items())
            spool[k].write(("" if first[k] else ",\n") + body)
            first[k] = False
        header.update({k: v for k, v in data.truth.items() if k not in ("persons", "records")})

    try:
        _generate(seed, customers, end, sink=sink, flush_every=flush_every, future_days=future_days)
    finally:
        for f in handles.values():
            f.close()
    try:
        with (out / "truth.json.tmp").open("w") as t:
            t.write(json.dumps(header, indent=1)[:-2] + ",\n")
            for k in ("persons", "records"):
                t.write(f' "{k}": {{\n')
                spool[k].seek(0)
                shutil.copyfileobj(spool[k], t)
                t.write("\n }" + ("," if k == "persons" else "") + "\n")
            t.write("}\n")
        os.replace(out / "truth.json.tmp", out / "truth.json")
    finally:
        for k, f in spool.items():
            f.close()
            (out / f".truth-{k}.part").unlink(missing_ok=True)
    return out
