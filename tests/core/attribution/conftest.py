"""Shared small journey sets for the attribution tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def tiny_journeys() -> pd.DataFrame:
    """Four journeys small enough to attribute by hand.

    a: Meta (Jan 1) > Email (Jan 5) > Direct (Jan 8, converts, $100)
    b: Google (Jan 2) > Direct (Jan 3)                       no conversion
    c: Direct (Jan 4, converts, $50)
    d: Meta (Jan 1) > Google (Jan 2)                         no conversion
    """
    return pd.DataFrame(
        {
            "journey_id": ["a", "a", "a", "b", "b", "c", "d", "d"],
            "timestamp": ["2024-01-01", "2024-01-05", "2024-01-08", "2024-01-02", "2024-01-03", "2024-01-04",
                          "2024-01-01", "2024-01-02"],
            "channel": ["Meta", "Email", "Direct", "Google", "Direct", "Direct", "Meta", "Google"],
            "converted": [0, 0, 1, 0, 0, 1, 0, 0],
            "revenue": [0, 0, 100, 0, 0, 50, 0, 0],
        }
    )


def second_world_marketing(seed: int = 5, days: int = 120) -> pd.DataFrame:
    """A marketing table unlike TechStyle: other channels, volumes and a podcast sponsor."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-01", periods=days)
    rows = []
    for ch, clicks in [("Search", 3000), ("YouTube", 1500), ("Email", 2500), ("Affiliate", 800), ("Podcast", 400)]:
        for d in dates:
            rows.append({"date": d, "channel": ch, "clicks": clicks * rng.uniform(0.7, 1.3), "conversions": 10.0,
                         "revenue": 600.0})
    return pd.DataFrame(rows)


SECOND_LIFTS = {"Search": 0.02, "YouTube": 0.06, "Email": 0.004, "Affiliate": 0.01, "Podcast": 0.03, "Direct": 0.001}


@pytest.fixture
def tiny() -> pd.DataFrame:
    return tiny_journeys()
