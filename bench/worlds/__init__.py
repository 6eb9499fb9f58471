"""Benchmark worlds with random structure and known truth for judging a marketing mix model."""

from bench.worlds.generator import QUICK_SEEDS, World, all_worlds, make_world, structure_kinds

__all__ = ["QUICK_SEEDS", "World", "all_worlds", "make_world", "structure_kinds"]
