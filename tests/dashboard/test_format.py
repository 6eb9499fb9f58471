"""Business formatting: $4.7M, $312K, $1,234, 3.14x, +12%."""

from __future__ import annotations

import math

import pytest

from dashboard.format import DASH, day, decimal, money, money_range, number, pct, ratio, share


@pytest.mark.parametrize("value,expected", [
    (0, "$0"), (0.85, "$0.85"), (7, "$7"), (1234, "$1,234"), (9999.4, "$9,999"), (9999.7, "$10K"),
    (12345, "$12.3K"), (45_000, "$45K"), (99_960, "$100K"), (312_456, "$312K"), (999_600, "$1M"),
    (4_700_000, "$4.7M"), (12_149_000, "$12.1M"), (1_200_000_000, "$1.2B"), (-1400, "-$1,400"),
    (-4_710_000, "-$4.7M"),
])
def test_money(value, expected) -> None:
    assert money(value) == expected


def test_money_signed_and_missing() -> None:
    assert money(1400, signed=True) == "+$1,400"
    assert money(-1400, signed=True) == "-$1,400"
    assert money(0, signed=True) == "$0"
    assert money(None) == DASH and money(math.nan) == DASH and money("n/a") == DASH


@pytest.mark.parametrize("value,expected", [(3.1416, "3.14x"), (1, "1.00x"), (0.456, "0.46x"), (None, DASH)])
def test_ratio(value, expected) -> None:
    assert ratio(value) == expected


@pytest.mark.parametrize("value,expected", [
    (0.12, "+12%"), (-0.034, "-3.4%"), (0.0, "0%"), (0.0004, "0%"), (1.57, "+157%"), (0.05, "+5%"),
    (0.099, "+9.9%"), (0.0996, "+10%"), (-1.0, "-100%"), (12.5, "+1,250%"), (None, DASH),
])
def test_pct(value, expected) -> None:
    assert pct(value) == expected


def test_share_number_day() -> None:
    assert share(0.481) == "48%" and share(0.031) == "3.1%"
    assert number(987) == "987" and number(12_345) == "12.3K" and number(4_700_000) == "4.7M"
    assert number(None) == DASH
    assert day("2025-03-05") == "Mar 5, 2025" and day(None) == DASH


def test_money_range_and_decimal() -> None:
    assert money_range(12_000, 26_000) == "$12K–$26K" and money_range(0.5, 7) == "$0.50–$7"
    assert money_range(None, 5) == DASH and money_range(5, math.nan) == DASH
    assert decimal(0.78341) == "0.78" and decimal(0.15234, 3) == "0.152" and decimal(None) == DASH
