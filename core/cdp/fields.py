"""The segment field catalogue: every profile trait and event a segment rule may test, with its type, operators,
unit and how it is read from the profile table.

A :class:`Field` is a profile column or a SQL expression over profile columns (``column_sql``, written in DuckDB
SQL, e.g. the email engagement level derived from the score). A field is offered only when the profile table has
every column it ``requires``, so prediction fields (churn risk, predicted LTV, next order date) appear as soon as
the prediction columns exist. Adding a field is one entry in :data:`FIELDS`; every canonical event type
(:data:`core.cdp.events.EVENT_TYPES`) has one entry in :data:`EVENTS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.cdp.health import BANDS
from core.cdp.next_action import ACTIONS

__all__ = [
    "Field",
    "EventType",
    "FIELDS",
    "FIELD_BY_NAME",
    "EVENTS",
    "PROPERTIES",
    "TYPE_OPERATORS",
    "COUNT_OPERATORS",
    "WHERE_OPERATORS",
    "OPERATOR_LABELS",
    "SOURCES",
    "field_by_name",
    "available_fields",
    "catalogue",
    "event_catalogue",
]

SOURCES: tuple[str, ...] = ("shopify", "klaviyo", "ga4", "gorgias", "recharge")

_NUMBER_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "is_set", "is_not_set")
#: the operators each field type allows (a field may narrow them with its own ``operators``)
TYPE_OPERATORS: dict[str, tuple[str, ...]] = {
    "number": _NUMBER_OPS,
    "integer": _NUMBER_OPS,
    "money": _NUMBER_OPS,
    "string": ("eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "is_set", "is_not_set"),
    "enum": ("eq", "ne", "in", "not_in", "is_set", "is_not_set"),
    "set": ("contains", "not_contains", "in", "is_set", "is_not_set"),
    "date": ("before", "after", "between", "within_last", "more_than_ago", "is_set", "is_not_set"),
    "boolean": ("eq",),
}
#: how often a behaviour happened: at least / at most / exactly N times
COUNT_OPERATORS: tuple[str, ...] = ("gte", "lte", "eq")
#: filters on an event property (text, compared case-insensitively)
WHERE_OPERATORS: tuple[str, ...] = ("eq", "ne", "in", "not_in", "contains", "starts_with")

OPERATOR_LABELS: dict[str, str] = {
    "eq": "is",
    "ne": "is not",
    "lt": "less than",
    "lte": "at most",
    "gt": "greater than",
    "gte": "at least",
    "between": "between",
    "in": "is any of",
    "not_in": "is none of",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "is_set": "is set",
    "is_not_set": "is not set",
    "before": "before",
    "after": "after",
    "within_last": "in the last",
    "more_than_ago": "more than … ago",
}


@dataclass(frozen=True)
class Field:
    """One segmentable trait. ``type``: number, integer, money, string, enum, set, date or boolean. ``column_sql``:
    a DuckDB SQL expression over profile columns (default: the column named ``name``); ``requires``: the profile
    columns it reads (default: ``(name,)``). ``values``: the closed value list of an enum (or the known elements
    of a set). Set fields are comma-joined lists of elements. Empty ``operators`` means every operator of the
    type."""

    name: str
    label: str
    type: str
    operators: tuple[str, ...] = ()
    unit: str | None = None
    group: str = "Profile"
    values: tuple[str, ...] | None = None
    column_sql: str | None = None
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in TYPE_OPERATORS:
            raise ValueError(f"field {self.name}: unknown type {self.type!r}")
        ops = self.operators or TYPE_OPERATORS[self.type]
        if not set(ops) <= set(TYPE_OPERATORS[self.type]):
            raise ValueError(f"field {self.name}: operators {sorted(set(ops) - set(TYPE_OPERATORS[self.type]))} "
                             f"are not defined for {self.type} fields")
        object.__setattr__(self, "operators", tuple(ops))
        object.__setattr__(self, "column_sql", self.column_sql or self.name)
        object.__setattr__(self, "requires", tuple(self.requires) or (self.name,))
        if self.type == "enum" and not self.values:
            raise ValueError(f"field {self.name}: an enum needs its values")

    def available(self, columns: Iterable[str]) -> bool:
        """Whether a profile table with ``columns`` has everything this field reads."""
        return set(self.requires) <= set(columns)


_ENGAGEMENT_LEVEL = ("CASE WHEN email_engagement_score >= 60 THEN 'High' WHEN email_engagement_score >= 30 "
                     "THEN 'Medium' WHEN email_engagement_score IS NOT NULL THEN 'Low' END")

FIELDS: list[Field] = [
    # contact
    Field("name", "Name", "string", group="Contact",
          column_sql="NULLIF(TRIM(CONCAT_WS(' ', first_name, last_name)), '')", requires=("first_name", "last_name")),
    Field("first_name", "First name", "string", group="Contact"),
    Field("last_name", "Last name", "string", group="Contact"),
    Field("email", "Email", "string", group="Contact"),
    Field("phone", "Phone", "string", group="Contact"),
    Field("location", "City", "string", group="Contact", column_sql="city", requires=("city",)),
    Field("person_id", "Customer ID", "string", ("eq", "ne", "in", "not_in", "starts_with"), group="Contact"),
    # orders
    Field("lifetime_value", "Lifetime value", "money", unit="$", group="Orders"),
    Field("total_orders", "Total orders", "integer", unit="orders", group="Orders"),
    Field("avg_order_value", "Average order value", "money", unit="$", group="Orders"),
    Field("first_order_date", "First order date", "date", group="Orders"),
    Field("last_order_date", "Last order date", "date", group="Orders"),
    Field("days_since_last_order", "Days since last order", "integer", unit="days", group="Orders"),
    Field("repeat_customer", "Repeat customer", "boolean", group="Orders", column_sql="total_orders >= 2",
          requires=("total_orders",)),
    # subscription
    Field("subscription_status", "Subscription status", "enum", group="Subscription",
          values=("active", "paused", "cancelled", "none")),
    Field("active_subscriber", "Active subscriber", "boolean", group="Subscription",
          column_sql="LOWER(subscription_status) = 'active'", requires=("subscription_status",)),
    Field("subscription_start_date", "Subscription start date", "date", group="Subscription"),
    Field("subscription_mrr", "Subscription MRR", "money", unit="$", group="Subscription"),
    # engagement
    Field("email_engagement", "Email engagement", "enum", group="Engagement", values=("High", "Medium", "Low"),
          column_sql=_ENGAGEMENT_LEVEL, requires=("email_engagement_score",)),
    Field("email_engagement_score", "Email engagement score", "integer", group="Engagement"),
    Field("email_opens", "Email opens", "integer", group="Engagement"),
    Field("email_clicks", "Email clicks", "integer", group="Engagement"),
    Field("support_tickets", "Support tickets", "integer", group="Engagement"),
    Field("reviews", "Reviews", "integer", group="Engagement"),
    Field("referrals", "Referrals", "integer", group="Engagement"),
    # data
    Field("sources", "Sources", "set", group="Data", values=SOURCES),
    Field("records", "Source records", "integer", group="Data"),
    Field("events", "Events", "integer", group="Data"),
    Field("first_seen", "First seen", "date", group="Data"),
    Field("last_seen", "Last seen", "date", group="Data"),
    # predictions: offered once the profile table has their column; churn risk (0-1) is compared in percent
    Field("churn_risk", "Churn risk", "number", unit="%", group="Predictions", column_sql="churn_risk * 100",
          requires=("churn_risk",)),
    Field("predicted_ltv", "Predicted lifetime value", "money", unit="$", group="Predictions"),
    Field("next_order_date", "Predicted next order date", "date", group="Predictions"),
    Field("health", "Customer health", "enum", group="Predictions", values=BANDS),
    Field("next_action", "Next best action", "enum", group="Predictions", values=tuple(ACTIONS)),
]

FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class EventType:
    """A behaviour a rule may test: an event type, its label and the properties a ``where`` may filter on."""

    name: str
    label: str
    properties: tuple[str, ...] = ("source",)


PROPERTIES: dict[str, str] = {"product": "Product", "campaign": "Campaign", "source": "Source"}
_PRODUCT = ("product", "source")
_CAMPAIGN = ("campaign", "source")

EVENTS: dict[str, EventType] = {e.name: e for e in [
    EventType("order", "Placed an order", _PRODUCT),
    EventType("web_purchase", "Purchased on the website", _PRODUCT),
    EventType("checkout_started", "Started checkout", _PRODUCT),
    EventType("added_to_cart", "Added to cart", _PRODUCT),
    EventType("product_viewed", "Viewed a product", _PRODUCT),
    EventType("page_view", "Viewed a page"),
    EventType("login", "Logged in"),
    EventType("web_event", "Other website event"),
    EventType("email_received", "Received an email", _CAMPAIGN),
    EventType("email_opened", "Opened an email", _CAMPAIGN),
    EventType("email_clicked", "Clicked an email", _CAMPAIGN),
    EventType("email_unsubscribed", "Unsubscribed from email", _CAMPAIGN),
    EventType("review_submitted", "Submitted a review", _PRODUCT),
    EventType("friend_referred", "Referred a friend"),
    EventType("ticket_created", "Opened a support ticket"),
    EventType("ticket_message", "Sent a support message"),
    EventType("subscription_created", "Started a subscription", _PRODUCT),
    EventType("subscription_updated", "Changed a subscription", _PRODUCT),
    EventType("subscription_cancelled", "Cancelled a subscription", _PRODUCT),
    EventType("charge_paid", "Paid a subscription charge", _PRODUCT),
    EventType("charge_failed", "Had a failed charge", _PRODUCT),
    EventType("customer_updated", "Updated their customer record"),
    EventType("other", "Other event"),
]}


def field_by_name(name: str) -> Field | None:
    """The catalogue entry called ``name`` (whatever the profile table holds), or None."""
    return FIELD_BY_NAME.get(name)


def available_fields(columns: Iterable[str]) -> dict[str, Field]:
    """The fields a profile table with ``columns`` can answer, by name, in catalogue order."""
    cols = set(columns)
    return {f.name: f for f in FIELDS if f.available(cols)}


def _values(known: Sequence[Any] | None) -> list[str] | None:
    return None if known is None else [str(v) for v in known]


def catalogue(columns: Iterable[str], known_values: Mapping[str, Sequence[Any]] | None = None) -> list[dict]:
    """JSON-ready field descriptions for the segment builder: the fields ``columns`` can answer, each with its
    operators and values (an enum's closed list, else ``known_values[name]`` when given, e.g. frequent cities)."""
    known = known_values or {}
    return [{"name": f.name, "label": f.label, "type": f.type, "operators": list(f.operators), "unit": f.unit,
             "group": f.group, "values": list(f.values) if f.values else _values(known.get(f.name))}
            for f in available_fields(columns).values()]


def event_catalogue(known_values: Mapping[str, Sequence[Any]] | None = None) -> list[dict]:
    """JSON-ready event descriptions: name, label and filterable properties with their known values, looked up
    in ``known_values`` as ``"<event>.<property>"`` then ``"<property>"`` (sources are always known)."""
    known = known_values or {}
    out = []
    for e in EVENTS.values():
        props = []
        for p in e.properties:
            vals = known.get(f"{e.name}.{p}", known.get(p))
            if vals is None and p == "source":
                vals = SOURCES
            props.append({"name": p, "label": PROPERTIES[p], "values": _values(vals)})
        out.append({"name": e.name, "label": e.label, "properties": props})
    return out
