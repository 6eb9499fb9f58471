"""Normalisation of identity fields (email, phone, names, dates of birth, postcodes, addresses).

Identity resolution links records on *normalised* values, so two spellings of the same identifier must map to the
same key and two different identifiers must never do so. Every function returns ``None`` for a missing or unusable
value (empty, placeholder, malformed) rather than raising: one bad cell must not stop a resolution run.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from functools import lru_cache

import pandas as pd

# Providers where the local part's dots are ignored (verified behaviour: Gmail ignores dots entirely).
_DOT_INSENSITIVE = {"gmail.com", "googlemail.com"}
# Providers that deliver "user+tag@domain" to "user@domain" (sub-addressing with "+").
_PLUS_ALIAS = {
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "icloud.com", "me.com",
    "mac.com", "protonmail.com", "proton.me", "pm.me", "fastmail.com", "fastmail.fm", "zoho.com", "yandex.com",
    "yandex.ru",
}
_DOMAIN_ALIAS = {"googlemail.com": "gmail.com"}
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PLACEHOLDER_LOCAL = {"none", "noemail", "no-email", "no.email", "null", "test", "na", "n/a", "unknown", "noreply"}

_EXTENSION_RE = re.compile(r"(?:ext\.?|extension|x|#)\s*\d{1,6}\s*$", re.IGNORECASE)

_STREET_ABBREV = {
    "street": "st", "str": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr", "lane": "ln",
    "boulevard": "blvd", "court": "ct", "place": "pl", "square": "sq", "terrace": "tce", "crescent": "cres",
    "highway": "hwy", "parkway": "pkwy", "circle": "cir", "close": "cl", "apartment": "apt", "suite": "ste",
    "unit": "unit", "north": "n", "south": "s", "east": "e", "west": "w", "mount": "mt", "saint": "st",
}

# First names are compared with nicknames by core.cdp.names (a relation, not a fold into one name).


def is_blank(value: object) -> bool:
    """True for None, NaN and empty or whitespace-only strings."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return value != value
    try:
        if pd.isna(value):
            return True
    except (TypeError, ValueError):
        return False
    return isinstance(value, str) and not value.strip()


def strip_accents(text: str) -> str:
    """``"José Müller"`` → ``"Jose Muller"``: decompose and drop combining marks (NFKD)."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalize_email(value: object) -> str | None:
    """Canonical email key: trimmed, lowercased; plus-alias removed for providers that deliver ``user+tag`` to
    ``user``; dots in the local part removed only for Gmail (the one provider that ignores them); googlemail.com
    folded into gmail.com. Malformed or placeholder addresses give ``None``."""
    if is_blank(value):
        return None
    raw = unicodedata.normalize("NFC", str(value)).strip().strip("<>\"'")
    if "@" in raw:  # accents folded in the local part only: "münchen.de" and "munchen.de" are other domains
        local_raw, domain_raw = raw.rsplit("@", 1)
        s = f"{strip_accents(local_raw)}@{domain_raw}".casefold()
    else:
        s = raw.casefold()
    if s.startswith("mailto:"):
        s = s[7:]
    if not _EMAIL_RE.match(s):
        return None
    local, domain = s.rsplit("@", 1)
    domain = domain.rstrip(".")
    domain = _DOMAIN_ALIAS.get(domain, domain)
    if domain in _PLUS_ALIAS and "+" in local:
        local = local.split("+", 1)[0]
    if domain in _DOT_INSENSITIVE:
        local = local.replace(".", "")
    if not local or local in _PLACEHOLDER_LOCAL:
        return None
    return f"{local}@{domain}"


def default_region() -> str:
    """The region national-format phone numbers are read in: ``GROWTHLENS_DEFAULT_REGION`` (ISO 3166, default
    ``US``). An unknown region is an error, never silently the US."""
    import os

    return check_region(os.environ.get("GROWTHLENS_DEFAULT_REGION", "US"))


@lru_cache(maxsize=64)
def check_region(region: str) -> str:
    """``region`` upper-cased (``UK`` read as ``GB``), or ``ValueError`` when phone numbering does not know it."""
    import phonenumbers

    r = str(region).strip().upper()
    r = {"UK": "GB"}.get(r, r)
    if r not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default phone region {region!r}: use an ISO 3166 code such as US, GB or FR")
    return r


def normalize_phone(value: object, default_country: str | None = None) -> str | None:
    """E.164 (``+14155550123``) from common written forms: ``(415) 555-0123``, ``1-415-555-0123``,
    ``+44 (0)20 7946 0958``, ``0044 20 7946 0958``, extensions dropped. National numbers are read in
    ``default_country`` (default :func:`default_region`). North American numbers take a fast path; every other
    number is parsed by ``phonenumbers`` (Google's libphonenumber), which knows each country's trunk prefix and
    lengths. Impossible numbers or a single repeated digit give ``None``."""
    if is_blank(value):
        return None
    region = check_region(default_country) if default_country else default_region()
    if isinstance(value, float) and value.is_integer():
        value = str(int(value))
    s = _EXTENSION_RE.sub("", str(value).strip())
    international = s.startswith("+")
    digits = re.sub(r"\D", "", s)
    if not digits:
        return None
    if not international and digits.startswith("00"):
        digits, international = digits[2:], True
    elif not international and region in _NANP and digits.startswith("011"):
        digits, international = digits[3:], True
    out = None
    if international and digits.startswith("1"):  # +1: North America, fast path
        out = digits if len(digits) == 11 and digits[1] not in "01" else None
    elif not international and region in _NANP:
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        out = "1" + digits if len(digits) == 10 and digits[0] not in "01" else None
    else:
        out = _parse_phone(("+" if international else "") + digits if international else s, region)
    if out is None or not 8 <= len(out) <= 15 or len(set(out[-7:])) == 1:
        return None
    return "+" + out


_NANP = frozenset({"US", "CA", "PR", "GU", "VI", "AS", "MP", "BS", "BB", "BM", "JM", "TT", "DO", "AG", "AI", "DM",
                   "GD", "KN", "KY", "LC", "MS", "SX", "TC", "VC", "VG"})


@lru_cache(maxsize=65536)
def _parse_phone(text: str, region: str) -> str | None:
    """E.164 digits (no ``+``) of a non-North-American number, or None when it cannot be a number."""
    import phonenumbers

    if text.startswith("+"):  # "+44 (0)20 …": the "(0)" trunk prefix written in international form
        text = re.sub(r"^\+(\d{1,3})\s*\(0\)", r"+\1", text)
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(num):
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)[1:]


def normalize_name(value: object) -> str | None:
    """Comparison form of a personal name: accents stripped, casefolded, punctuation to spaces, single spaces."""
    if is_blank(value):
        return None
    s = strip_accents(str(value)).casefold()
    s = re.sub(r"[^a-z\s]", " ", s.replace("'", ""))
    s = " ".join(s.split())
    return s or None


@lru_cache(maxsize=65536)
def soundex(name: str | None) -> str | None:
    """American Soundex code of a normalised name (``"robert"`` → ``"R163"``), used as a blocking key."""
    if not name:
        return None
    letters = [c for c in name if "a" <= c <= "z"]
    if not letters:
        return None
    codes = {**dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"), **dict.fromkeys("dt", "3"),
             "l": "4", **dict.fromkeys("mn", "5"), "r": "6"}
    out = [letters[0].upper()]
    prev = codes.get(letters[0], "")
    for c in letters[1:]:
        d = codes.get(c, "")
        if d and d != prev:
            out.append(d)
        if c not in "hw":
            prev = d
    return ("".join(out) + "000")[:4]


def normalize_dob(value: object, dayfirst: bool = False) -> str | None:
    """Date of birth as ``YYYYMMDD``. Accepts dates, ISO strings, ``YYYYMMDD``, ``MM/DD/YYYY`` (``DD/MM/YYYY`` with
    ``dayfirst``) and ``DD.MM.YYYY``. An 8-digit string that is not a valid calendar date (a typo such as month 13)
    is kept as is so that near-equal comparison still works; anything else unusable gives ``None``."""
    if is_blank(value):
        return None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.strftime("%Y%m%d")
    if isinstance(value, float) and value.is_integer():
        value = str(int(value))
    s = str(value).strip()
    if re.fullmatch(r"\d{8}", s):
        if 1850 <= int(s[:4]) <= 2100:
            return s
        return None
    m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T].*)?", s)
    if m:
        y, mo, d = m.groups()
    else:
        m = re.fullmatch(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})", s)
        if not m:
            try:
                return pd.Timestamp(s).strftime("%Y%m%d")
            except (ValueError, TypeError, OverflowError):
                return None
        a, sep, b, y = m.groups()
        mo, d = (b, a) if (dayfirst or sep == ".") else (a, b)
    try:
        return date(int(y), int(mo), int(d)).strftime("%Y%m%d")
    except ValueError:
        return None


def normalize_postcode(value: object) -> str | None:
    """Postcode key: uppercase, no spaces or dashes; US ZIP+4 cut to the five-digit ZIP; leading zeros kept
    (a ZIP read as a number, e.g. 2134.0, is padded back to 02134)."""
    if is_blank(value):
        return None
    numeric = isinstance(value, int | float)
    if isinstance(value, float) and value.is_integer():
        value = str(int(value))
    s = strip_accents(str(value)).upper().strip()
    m = re.fullmatch(r"(\d{5})-?\d{4}", s)
    if m:
        return m.group(1)
    s = re.sub(r"[\s\-]", "", s)
    if numeric and re.fullmatch(r"\d{3,4}", s):
        s = s.zfill(5)
    return s or None


def normalize_address(value: object) -> str | None:
    """Address comparison form: accents stripped, casefolded, punctuation removed, common street words abbreviated
    (``"12 North Main Street, Apt. 4"`` → ``"12 n main st apt 4"``)."""
    if is_blank(value):
        return None
    s = strip_accents(str(value)).casefold()
    s = re.sub(r"[^a-z0-9\s]", " ", s.replace("'", ""))
    tokens = [_STREET_ABBREV.get(t, t) for t in s.split()]
    return " ".join(tokens) or None


def normalize_city(value: object) -> str | None:
    """City comparison form: accents stripped, casefolded, punctuation to spaces (``"St. Louis"`` → ``"st louis"``)."""
    if is_blank(value):
        return None
    s = re.sub(r"[^a-z0-9\s]", " ", strip_accents(str(value)).casefold().replace("'", ""))
    return " ".join(s.split()) or None
