"""Nickname relations between given names, for comparing first names (never for rewriting one).

A nickname is short for several given names ("alex": alexander, alexandra, alexis; "nell": eleanor, ellen, helen)
and is often a given name of its own, so names are never folded into one canonical form: two first names *match
as nicknames* only when one is a known nickname of the other. The relation is not transitive, so "nora" and "ellie"
(both short for eleanor) stay different names, as do "alexander" and "alexandra".

The relations come from the ``nicknames`` package (a hand-curated CSV of English given names and their nicknames,
read through its ``NickNamer``), plus :data:`_EXTRA` for a few common pairs it lacks. Both sides are put through
:func:`core.cdp.normalize.normalize_name`, the form resolution compares.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from core.cdp.normalize import normalize_name

# Common pairs the package does not list (checked against nicknames 1.0.1).
_EXTRA = (
    ("nell", "eleanor"), ("nell", "helen"), ("robbie", "robert"), ("katie", "katherine"), ("stephen", "steven"),
    ("suzy", "susan"), ("soph", "sophia"), ("izzy", "isabella"),
)


@lru_cache(maxsize=1)
def relations() -> dict[str, frozenset[str]]:
    """Normalised first name → the names it is a nickname of or that are nicknames of it (symmetric)."""
    from nicknames import NickNamer

    pairs: list[tuple[str, str]] = [(given, nick) for given, nicks in NickNamer().nickname_lookup.items()
                                    for nick in nicks]
    pairs.extend(_EXTRA)
    out: dict[str, set[str]] = {}
    for a, b in pairs:
        na, nb = normalize_name(a), normalize_name(b)
        if na and nb and na != nb:
            out.setdefault(na, set()).add(nb)
            out.setdefault(nb, set()).add(na)
    return {k: frozenset(v) for k, v in out.items()}


def related(name: str | None) -> frozenset[str]:
    """The names ``name`` (normalised) matches as a nickname; empty for an unknown name or None."""
    if not name:
        return frozenset()
    return relations().get(name, frozenset())


def are_nicknames(a: str | None, b: str | None) -> bool:
    """True when two different normalised first names are a nickname and the name it is short for."""
    return a is not None and b is not None and a != b and b in related(a)


def same_or_nickname(a: str | None, b: str | None) -> bool:
    """The first-name agreement resolution uses: the same name, or one a known nickname of the other."""
    return (a is not None and a == b) or are_nicknames(a, b)


class NicknamePairs:
    """Vectorised :func:`are_nicknames` over pairs of one resolution's first names.

    Each distinct name gets an integer id; the related pairs among the names present are kept as sorted int64
    codes, so millions of candidate pairs are tested with one ``np.isin`` instead of a Python loop."""

    def __init__(self, first: np.ndarray):
        present = [v for v in first if v is not None]
        names = sorted(set(present))
        self.size = len(names) + 1
        pos = {v: p + 1 for p, v in enumerate(names)}  # 0: missing
        self.ids = np.fromiter((pos.get(v, 0) if v is not None else 0 for v in first), np.int64, len(first))
        codes = [min(pos[a], pos[b]) * self.size + max(pos[a], pos[b])
                 for a in names for b in related(a) if b in pos and a < b]
        self.codes = np.unique(np.asarray(codes, dtype=np.int64))

    def test(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """For record index pairs (i, j): True where their first names are nicknames of each other."""
        if len(self.codes) == 0 or len(i) == 0:
            return np.zeros(len(i), dtype=bool)
        a, b = self.ids[i], self.ids[j]
        return np.isin(np.minimum(a, b) * self.size + np.maximum(a, b), self.codes, assume_unique=False)
