"""Customer-journey worlds with random structure and planted causal truth, for judging multi-touch attribution."""

from bench.journey_worlds.generator import (
    ALL_SEEDS,
    LOOKBACK_DAYS,
    QUICK_SEEDS,
    JourneyWorld,
    hidden_like_world,
    make_journey_world,
    mechanisms_on,
    world_structure,
)
from bench.journey_worlds.structure import MECHANISMS

__all__ = ["ALL_SEEDS", "LOOKBACK_DAYS", "MECHANISMS", "QUICK_SEEDS", "JourneyWorld", "hidden_like_world",
           "make_journey_world", "mechanisms_on", "world_structure"]
