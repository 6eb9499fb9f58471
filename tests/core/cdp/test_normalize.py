"""Normalisation of identity fields: each messy form maps to one key, different identifiers never collide."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from core.cdp import normalize as nz


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("JaneDoe@GMAIL.com", "janedoe@gmail.com"),
        ("jane.doe+promo@gmail.com", "janedoe@gmail.com"),
        ("Jane.Doe@googlemail.com", "janedoe@gmail.com"),
        ("jane+news@outlook.com", "jane@outlook.com"),
        ("<jane@icloud.com>", "jane@icloud.com"),
        ("mailto:Jane@Example.com", "jane@example.com"),
    ],
)
def test_email_variants_map_to_one_key(raw, key):
    assert nz.normalize_email(raw) == key


def test_email_rules_only_where_safe():
    # dots matter outside Gmail; "+" is part of the address at providers without sub-addressing
    assert nz.normalize_email("jane.doe@example.com") != nz.normalize_email("janedoe@example.com")
    assert nz.normalize_email("jane+x@example.com") == "jane+x@example.com"
    assert nz.normalize_email("jane.doe@outlook.com") == "jane.doe@outlook.com"


@pytest.mark.parametrize("raw", [None, "", "   ", float("nan"), "not an email", "a@b", "two@@x.com", "none@x.com"])
def test_email_unusable_is_none(raw):
    assert nz.normalize_email(raw) is None


@pytest.mark.parametrize(
    "raw",
    ["(415) 555-0123", "415-555-0123", "415.555.0123", "+1 415 555 0123", "1-415-555-0123", "4155550123",
     "+14155550123", "(415) 555-0123 ext. 12", "001 415 555 0123", 4155550123, 4155550123.0],
)
def test_us_phone_formats_to_e164(raw):
    assert nz.normalize_phone(raw) == "+14155550123"


def test_phone_default_country_and_international():
    assert nz.normalize_phone("020 7946 0958", default_country="GB") == "+442079460958"
    assert nz.normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert nz.normalize_phone("0044 20 7946 0958") == "+442079460958"
    assert nz.normalize_phone("030 123456", default_country="DE") == "+4930123456"


@pytest.mark.parametrize("raw", [None, "", "555-0123", "000-000-0000", "(415) 555-01", "+1 415 555 01234", "abc"])
def test_phone_unusable_is_none(raw):
    assert nz.normalize_phone(raw) is None


def test_names_casefold_and_strip_accents():
    assert nz.normalize_name("  José  MÜLLER ") == "jose muller"
    assert nz.normalize_name("O'Brien-Smith") == "obrien smith"
    assert nz.normalize_name("Straße") == "strasse"
    assert nz.normalize_name("  ") is None


def test_soundex():
    assert nz.soundex("robert") == nz.soundex("rupert") == "R163"
    assert nz.soundex("ashcraft") == "A261"
    assert nz.soundex("tymczak") == "T522"
    assert nz.soundex(None) is None


@pytest.mark.parametrize(
    "raw",
    ["1980-03-07", "19800307", "03/07/1980", "07.03.1980", date(1980, 3, 7), pd.Timestamp("1980-03-07"),
     "1980-03-07T00:00:00", 19800307.0],
)
def test_dob_formats(raw):
    assert nz.normalize_dob(raw) == "19800307"


def test_dob_dayfirst_invalid_and_typo():
    assert nz.normalize_dob("07/03/1980", dayfirst=True) == "19800307"
    assert nz.normalize_dob("1980-02-30") is None
    assert nz.normalize_dob("19801307") == "19801307"  # an 8-digit typo is kept for near-equal comparison
    assert nz.normalize_dob("yesterday-ish") is None
    assert nz.normalize_dob(None) is None


def test_postcode_and_address():
    assert nz.normalize_postcode("02134-1234") == "02134"
    assert nz.normalize_postcode(2134.0) == "02134"
    assert nz.normalize_postcode(" sw1a 1aa ") == "SW1A1AA"
    assert nz.normalize_postcode(None) is None
    assert nz.normalize_address("12 North Main Street, Apt. 4") == "12 n main st apt 4"
    assert nz.normalize_address("12 N. Main St apt 4") == "12 n main st apt 4"
    assert nz.normalize_address(math.nan) is None


# ---------------------------------------------------------------------------------- regressions (libraries)
@pytest.mark.parametrize("raw,region,want", [
    ("+44 (0)20 7946 0958", "US", "+442079460958"),  # the "(0)" trunk prefix written in international form
    ("+33 (0)6 12 34 56 78", "US", "+33612345678"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("06 12 34 56 78", "FR", "+33612345678"),
    ("0044 20 7946 0958", "US", "+442079460958"),
    ("(415) 555-0123", "US", "+14155550123"),  # North America keeps its fast path
    ("+1 415 555 0123", "GB", "+14155550123"),
])
def test_phone_numbers_outside_north_america(raw, region, want):
    from core.cdp.normalize import normalize_phone

    assert normalize_phone(raw, region) == want


def test_unknown_default_region_is_an_error_not_the_us(monkeypatch):
    from core.cdp.normalize import normalize_phone

    with pytest.raises(ValueError, match="unknown default phone region 'ZZ'"):
        normalize_phone("020 7946 0958", "ZZ")
    monkeypatch.setenv("GROWTHLENS_DEFAULT_REGION", "GB")
    assert normalize_phone("020 7946 0958") == "+442079460958"


def test_email_domains_keep_their_accents():
    from core.cdp.normalize import normalize_email

    assert normalize_email("user@münchen.de") == "user@münchen.de" != normalize_email("user@munchen.de")
    assert normalize_email("José@Example.com") == "jose@example.com"  # the local part may be folded
