"""Validation, lookback and aggregation of journeys and paths."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.attribution import (
    JourneyValidationError,
    aggregate_journeys,
    aggregate_paths,
    read_journeys_csv,
    validate_journeys,
)
from core.attribution.heuristic import last_click


def as_dict(ps) -> dict[str, tuple[float, float, float]]:
    return {s: (c, r, n) for s, c, r, n in zip(ps.path_strings(), ps.conversions, ps.revenue, ps.nulls, strict=True)}


def test_aggregates_into_distinct_paths(tiny):
    ps = aggregate_journeys(tiny)
    assert as_dict(ps) == {"Meta > Email > Direct": (1, 100, 0), "Google > Direct": (0, 0, 1), "Direct": (1, 50, 0),
                           "Meta > Google": (0, 0, 1)}
    assert ps.journeys == 4 and ps.total_conversions == 2 and ps.total_revenue == 150


def test_row_order_does_not_matter(tiny):
    shuffled = tiny.sample(frac=1.0, random_state=3)
    assert as_dict(aggregate_journeys(shuffled)) == as_dict(aggregate_journeys(tiny))


def test_conversion_repeated_on_every_row_is_one_conversion(tiny):
    repeated = tiny.copy()
    for j, rev in (("a", 100.0), ("c", 50.0)):
        repeated.loc[repeated.journey_id == j, ["converted", "revenue"]] = [1, rev]
    assert as_dict(aggregate_journeys(repeated)) == as_dict(aggregate_journeys(tiny))


def test_touches_after_conversion_are_dropped():
    df = pd.DataFrame({"journey_id": ["x"] * 3, "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"],
                       "channel": ["A", "B", "C"], "converted": [0, 1, 0], "revenue": [0, 20, 0]})
    ps = aggregate_journeys(df)
    assert as_dict(ps) == {"A > B": (1, 20, 0)}
    assert ps.dropped_touches == 1


def test_lookback_window_is_a_parameter():
    df = pd.DataFrame({"journey_id": ["x"] * 3 + ["y"] * 2,
                       "timestamp": ["2024-01-01", "2024-02-15", "2024-02-20", "2024-01-01", "2024-03-01"],
                       "channel": ["A", "B", "C", "A", "B"], "converted": [0, 0, 1, 0, 0], "revenue": [0, 0, 9, 0, 0]})
    # x converts on Feb 20: the Jan 1 touch is 50 days earlier; y never converts: window ends at its last touch
    assert as_dict(aggregate_journeys(df)) == {"B > C": (1, 9, 0), "B": (0, 0, 1)}
    assert as_dict(aggregate_journeys(df, lookback_days=60)) == {"A > B > C": (1, 9, 0), "A > B": (0, 0, 1)}
    assert as_dict(aggregate_journeys(df, lookback_days=None)) == {"A > B > C": (1, 9, 0), "A > B": (0, 0, 1)}
    with pytest.raises(ValueError, match="lookback_days"):
        aggregate_journeys(df, lookback_days=0)


def test_interaction_filter():
    df = pd.DataFrame({"journey_id": ["x"] * 3 + ["y"], "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"] * 1
                       + ["2024-01-01"], "channel": ["Meta", "Email", "Direct", "Meta"],
                       "interaction": ["View", "click", "visit", "view"], "converted": [0, 0, 1, 1],
                       "revenue": [0, 0, 5, 7]})
    ps = aggregate_journeys(df, interactions=["click", "visit"])
    assert as_dict(ps) == {"Email > Direct": (1, 5, 0)}
    # journey y had only a view: its conversion cannot be attributed and is reported, not lost silently
    assert ps.dropped_conversions == 1
    assert as_dict(aggregate_journeys(df, interactions=["view"])) == {"Meta": (2, 12, 0)}
    with pytest.raises(ValueError, match="interaction"):
        aggregate_journeys(df.drop(columns="interaction"), interactions=["click"])


def test_validation_lists_every_problem_with_row_and_column(tiny):
    bad = tiny.copy().astype(object)
    bad.loc[1, "timestamp"] = "not a date"
    bad.loc[3, "channel"] = "  "
    bad.loc[4, "converted"] = "maybe"
    bad.loc[6, "revenue"] = "-5"
    bad.loc[7, "revenue"] = "ten"
    bad.loc[0, "journey_id"] = None
    with pytest.raises(JourneyValidationError) as err:
        validate_journeys(bad)
    got = {(p["row"], p["column"]) for p in err.value.problems}
    assert got == {(2, "journey_id"), (3, "timestamp"), (5, "channel"), (6, "converted"), (8, "revenue"),
                   (9, "revenue")}
    assert "row 3, column 'timestamp'" in str(err.value)


def test_missing_columns_are_named(tiny):
    with pytest.raises(JourneyValidationError, match="'channel'.*missing"):
        validate_journeys(tiny.drop(columns="channel"))


def test_revenue_on_non_converting_journey_is_rejected(tiny):
    bad = tiny.copy()
    bad.loc[3, "revenue"] = 30.0  # journey b never converts
    with pytest.raises(JourneyValidationError) as err:
        validate_journeys(bad)
    assert [(p["row"], p["column"]) for p in err.value.problems] == [(5, "revenue")]


def test_validation_does_not_change_the_input(tiny):
    before = tiny.copy()
    aggregate_journeys(tiny)
    pd.testing.assert_frame_equal(tiny, before)


def test_paths_format_matches_journeys_format(tiny):
    ps = aggregate_journeys(tiny)
    again = aggregate_paths(ps.to_frame())
    assert as_dict(again) == as_dict(ps)
    np.testing.assert_allclose(last_click(again)[0], last_click(ps)[0])


def test_paths_validation():
    bad = pd.DataFrame({"path": ["A > B", "", "A >  > C", "B"], "conversions": [1, 2, "x", -1],
                        "revenue": [10, 0, 0, 5]})
    with pytest.raises(JourneyValidationError) as err:
        aggregate_paths(bad)
    got = {(p["row"], p["column"]) for p in err.value.problems}
    assert got == {(3, "path"), (4, "path"), (4, "conversions"), (5, "conversions")}


def test_paths_duplicates_are_summed():
    ps = aggregate_paths(pd.DataFrame({"path": ["A>B", "A > B", "B"], "conversions": [1, 2, 0], "nulls": [0, 1, 4]}))
    assert as_dict(ps) == {"A > B": (3, 0, 1), "B": (0, 0, 4)}


def test_read_csv_both_formats(tiny):
    buf = io.BytesIO(tiny.to_csv(index=False).encode())
    df = read_journeys_csv(buf, "journeys")
    assert as_dict(aggregate_journeys(df)) == as_dict(aggregate_journeys(tiny))
    paths = io.BytesIO(b"path,conversions,revenue,nulls\nA > B,2,20,3\nB,1,5,0\n")
    assert as_dict(aggregate_paths(read_journeys_csv(paths, "paths"))) == {"A > B": (2, 20, 3), "B": (1, 5, 0)}
    with pytest.raises(ValueError, match="format"):
        read_journeys_csv(buf, "xml")


def test_long_paths_beyond_integer_keys_are_kept_distinct():
    n = 40  # longer than fits an exact integer key with 3 channels
    rows = []
    for j, tail in enumerate(["A", "B"]):
        for i in range(n):
            rows.append({"journey_id": f"j{j}", "timestamp": pd.Timestamp("2024-01-01") + pd.Timedelta(hours=i),
                         "channel": "C" if i < n - 1 else tail, "converted": int(i == n - 1), "revenue": 0.0})
    ps = aggregate_journeys(pd.DataFrame(rows))
    assert len(ps.paths) == 2 and sorted(p[-1] for p in ps.paths) == [0, 1]


def test_long_journeys_group_into_the_same_paths_as_a_plain_row_sort() -> None:
    from core.attribution.journeys import _unique_paths

    rng = np.random.default_rng(5)
    lengths = rng.integers(1, 60, 4_000)  # far beyond the exact positional key's width
    lengths[:2000] = rng.integers(1, 4, 2000)  # and many repeats of short paths
    codes = rng.integers(1, 4, int(lengths.sum()))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.arange(len(codes)) - np.repeat(starts, lengths)
    first, inverse = _unique_paths(codes, pos, starts, lengths, 4)
    as_tuples = [tuple(codes[s:s + n]) for s, n in zip(starts, lengths, strict=True)]
    assert len(first) == len(set(as_tuples))
    for j in range(len(lengths)):
        assert as_tuples[j] == as_tuples[first[inverse[j]]]
