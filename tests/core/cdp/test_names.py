"""Many-to-many nicknames: a nickname matches each name it is short for without making those names one person."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from core.cdp.identity import resolve
from core.cdp.matching import COMPARISONS, comparison_columns, comparison_levels
from core.cdp.names import NicknamePairs, are_nicknames, related, same_or_nickname
from tests.core.cdp.test_identity import person_of, population, with_background


@pytest.fixture(scope="module")
def background() -> pd.DataFrame:
    rec, _ = population(150, seed=3, typo_rate=0.05, missing_rate=0.1)
    return rec


@pytest.mark.parametrize("nick,names", [
    ("nell", ["eleanor", "helen", "ellen"]),
    ("alex", ["alexander", "alexandra", "alexis"]),
    ("bella", ["isabella", "arabella"]),
    ("bob", ["robert"]),
])
def test_a_nickname_matches_every_name_it_is_short_for(nick, names):
    for name in names:
        assert are_nicknames(nick, name) and are_nicknames(name, nick)
        assert same_or_nickname(nick, name)


@pytest.mark.parametrize("a,b", [
    *itertools.combinations(["nora", "ellie", "nell"], 2),  # all short for eleanor, still three names
    ("alexander", "alexandra"), ("alexander", "alexis"), ("eleanor", "helen"), ("isabella", "arabella"),
    ("emma", "olivia"),
])
def test_names_sharing_a_nickname_stay_different(a, b):
    assert not are_nicknames(a, b)
    assert not same_or_nickname(a, b)


def test_unknown_missing_and_equal_names():
    assert same_or_nickname("zelda", "zelda") and not are_nicknames("zelda", "zelda")
    assert related("zelda") == frozenset() and related(None) == frozenset()
    assert not same_or_nickname(None, None) and not same_or_nickname("bob", None)


def test_vectorised_pairs_agree_with_the_scalar_test():
    first = np.array(["nell", "eleanor", "helen", "nora", "ellie", None, "bob", "robert", "alex", "alexis"],
                     dtype=object)
    i, j = (np.array(x, dtype=np.int64) for x in zip(*itertools.combinations(range(len(first)), 2), strict=True))
    got = NicknamePairs(first).test(i, j)
    want = np.array([are_nicknames(first[a], first[b]) for a, b in zip(i, j, strict=True)])
    assert got.tolist() == want.tolist()
    # nell-eleanor, nell-helen, nora-eleanor, ellie-eleanor, ellie-helen, bob-robert, alex-alexis
    assert int(got.sum()) == 7
    assert not NicknamePairs(first[:0]).test(i[:0], j[:0]).size


def test_nickname_is_its_own_comparison_level():
    n = pd.DataFrame({c.col: [None, None] for c in COMPARISONS})
    n["first"] = ["nell", "helen"]
    n["last"] = ["okafor", "okafor"]
    for c in ("email_domain", "email_nodigit", "dob_swap", "phone7"):
        n[c] = None
    lv = comparison_levels(comparison_columns(n), np.array([0]), np.array([1]))
    assert COMPARISONS[0].labels[lv[0, 0]] == "nickname"
    assert COMPARISONS[1].labels[lv[0, 1]] == "equal"


def test_nell_links_to_eleanor_and_to_helen_without_joining_them(background):
    rows = [{"record_id": "e1", "first_name": "Eleanor", "last_name": "Whitcombe", "date_of_birth": "1981-02-03",
             "postcode": "73301", "address": "4 Birch Street"},
            {"record_id": "e2", "first_name": "Nell", "last_name": "Whitcombe", "date_of_birth": "1981-02-03",
             "postcode": "73301", "address": "4 Birch St"},
            {"record_id": "h1", "first_name": "Helen", "last_name": "Whitcombe", "date_of_birth": "1990-11-20",
             "postcode": "73301", "address": "19 Cedar Road"},
            {"record_id": "h2", "first_name": "Nell", "last_name": "Whitcombe", "date_of_birth": "1990-11-20",
             "postcode": "73301", "address": "19 Cedar Rd"}]
    res = resolve(with_background(background, rows))
    assert person_of(res, "e1") == person_of(res, "e2")
    assert person_of(res, "h1") == person_of(res, "h2")
    assert person_of(res, "e1") != person_of(res, "h1")
    expl = res.merges[res.merges.record_b.isin(["e2", "h2"])].explanation.tolist()
    assert len(expl) == 2 and all("first_name nickname" in e for e in expl)


def test_nora_ellie_and_nell_stay_three_people(background):
    """The GlowBeauty case: three women of one family at one address, nothing else shared."""
    rows = [{"record_id": r, "first_name": f, "last_name": "Whitcombe", "postcode": "73301",
             "address": "4 Birch Street", "city": "Austin", "email": f"{f.lower()}.w@example.com"}
            for r, f in (("n1", "Nora"), ("n2", "Ellie"), ("n3", "Nell"))]
    res = resolve(with_background(background, rows))
    assert len({person_of(res, r) for r in ("n1", "n2", "n3")}) == 3


def test_a_model_stored_before_the_nickname_level_still_scores(background):
    res = resolve(background)
    old = {**res.model, "comparisons": {**res.model["comparisons"]}}
    old["comparisons"]["first_name"] = {k: v for k, v in old["comparisons"]["first_name"].items()
                                        if k != "nickname"}
    again = resolve(background, model=old)
    assert again.model["comparisons"]["first_name"]["nickname"] == old["comparisons"]["first_name"]["very similar"]
