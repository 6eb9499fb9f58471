"""The demo journeys generator (planted truth, consistency with the marketing table)."""

from __future__ import annotations

import numpy as np
import pytest

from core.attribution import validate_journeys
from core.demo.journeys import generate_journeys, true_incremental

from .conftest import SECOND_LIFTS, second_world_marketing


@pytest.fixture(scope="module")
def generated():
    marketing = second_world_marketing()
    df, truth = generate_journeys(marketing, n_journeys=8000, seed=11, lifts=SECOND_LIFTS, base_rate=0.03)
    return marketing, df, truth


def test_output_is_valid_long_journeys(generated):
    _, df, truth = generated
    assert list(df.columns) == ["journey_id", "customer_id", "timestamp", "channel", "interaction", "converted",
                                "revenue"]
    validate_journeys(df)
    assert df["journey_id"].nunique() == 8000 and len(df) == truth["touches"]
    per_journey = df.groupby("journey_id")["converted"].sum()
    assert per_journey.max() == 1 and per_journey.sum() == truth["conversions"]
    assert (df.loc[df.converted == 0, "revenue"] == 0).all() and (df.loc[df.converted == 1, "revenue"] > 0).all()


def test_channel_mix_follows_clicks(generated):
    marketing, df, _ = generated
    media = df[df.channel != "Direct"]
    touch_share = media.channel.value_counts(normalize=True)
    click_share = marketing.groupby("channel").clicks.sum() / marketing.clicks.sum()
    for ch in click_share.index:
        assert touch_share[ch] == pytest.approx(click_share[ch], abs=0.06), ch


def test_truth_shares_are_exact_counterfactuals(generated):
    _, df, truth = generated
    channels = list(truth["incremental_share"])
    counts = df.pivot_table(index="journey_id", columns="channel", values="converted", aggfunc="size",
                            fill_value=0, observed=False)[channels].to_numpy(float)
    lifts = np.array([truth["channels"][c]["lift"] for c in channels])
    p, inc = true_incremental(counts, truth["base_rate"], lifts)
    np.testing.assert_allclose(inc / inc.sum(), [truth["incremental_share"][c] for c in channels], rtol=1e-9)
    assert truth["expected_conversions"] == pytest.approx(p.sum(), rel=1e-9)
    # realised conversions agree with the generating probabilities (binomial noise)
    assert abs(truth["conversions"] - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())
    # planted: the high-lift upper-funnel channel has the largest true share, Direct the smallest
    assert max(truth["incremental_share"], key=truth["incremental_share"].get) == "YouTube"
    assert min(truth["incremental_share"], key=truth["incremental_share"].get) == "Direct"


def test_seed_reproducible_and_bad_input():
    marketing = second_world_marketing(days=60)
    a, ta = generate_journeys(marketing, 500, seed=2)
    b, tb = generate_journeys(marketing, 500, seed=2)
    assert a.equals(b) and ta == tb
    with pytest.raises(ValueError, match="unknown channel"):
        generate_journeys(marketing, 100, lifts={"Radio": 0.1})
    with pytest.raises(ValueError, match="clicks"):
        generate_journeys(marketing.drop(columns="clicks"), 100)
