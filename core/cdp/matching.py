"""Fellegi–Sunter record matching: comparison levels, blocking, m/u estimation by EM, pair weights.

Used by :mod:`core.cdp.identity` for the probabilistic stage. Each comparison (first and last name, date of birth,
postcode, address, city, phone, email) has levels from "equal" to "different"; candidate pairs come from several
blocking keys; u-probabilities from random record pairs and m-probabilities from EM over training sessions (pairs
blocked on one field, which that session does not estimate, as Splink does). A pair's weight is the sum of
log2(m/u) over its comparison levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.process import cpdist

from core.cdp import normalize as nz
from core.cdp.names import NicknamePairs, related

_NARROW_ABOVE = 20  # blocks larger than this are split by a name initial (see _blocking_keys)
_MAX_BLOCK = 200  # blocks larger than this carry little signal and would cost O(n^2) pairs: skipped
_RANDOM_PAIRS = 60_000
_EM_ITERATIONS = 40
_SESSION_PAIRS = 50_000  # EM needs no more pairs than this per session


@dataclass(frozen=True)
class _Comparison:
    name: str  # the input column it explains
    col: str  # the normalised column
    kind: str
    labels: tuple[str, ...]  # one per level, the last is "different"


COMPARISONS = [
    # "nickname": one first name is a known nickname of the other (core.cdp.names), a level of its own so that its
    # weight is estimated like any other; a nickname of several names matches each of them without folding them
    _Comparison("first_name", "first", "name", ("equal", "nickname", "very similar", "similar", "different")),
    _Comparison("last_name", "last", "name", ("equal", "very similar", "similar", "different")),
    _Comparison("date_of_birth", "dob", "dob", ("equal", "one typo or day/month swapped", "two typos", "different")),
    _Comparison("postcode", "postcode", "code", ("equal", "one typo", "different")),
    _Comparison("address", "address", "text", ("equal", "very similar", "similar", "different")),
    _Comparison("city", "city", "city", ("equal", "similar", "different")),
    _Comparison("phone", "phone", "phone", ("equal", "one digit off or same last 7 digits", "different")),
    _Comparison("email", "email", "email", ("equal", "one typo", "different")),
]

# ------------------------------------------------------------------------------------------- pairwise comparisons
_HELPER_COLS = ("email_domain", "email_nodigit", "dob_swap", "phone7")


def comparison_columns(n: pd.DataFrame) -> dict:
    """The normalised columns as object arrays, plus presence masks (``"<col>?"``) and the first names' nickname
    pairs (``"first_nicknames"``, a :class:`NicknamePairs`), built once per resolution."""
    cols: dict = {c: n[c].to_numpy(dtype=object) for c in [*(c.col for c in COMPARISONS), *_HELPER_COLS]}
    cols.update({f"{c.col}?": n[c.col].notna().to_numpy() for c in COMPARISONS})
    cols["first_nicknames"] = NicknamePairs(cols["first"])
    return cols


def comparison_levels(n: dict, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Comparison level of each pair for every comparison (-1 where either value is missing). Shape (pairs, K).
    ``n`` comes from :func:`comparison_columns`. Similarity scores are computed only for pairs whose values differ."""
    out = np.full((len(i), len(COMPARISONS)), -1, dtype=np.int8)
    if len(i) == 0:
        return out
    for k, c in enumerate(COMPARISONS):
        vals = n[c.col]
        present = n[f"{c.col}?"]
        ok = np.flatnonzero(present[i] & present[j])
        if len(ok) == 0:
            continue
        ia, ib = i[ok], j[ok]
        a, b = vals[ia], vals[ib]
        eq = a == b
        lev = np.zeros(len(ok), dtype=np.int8)
        ne = np.flatnonzero(~eq)
        if c.col == "first" and len(ne):  # a known nickname of the other: its own level, the JW levels after it
            nick = n["first_nicknames"].test(ia[ne], ib[ne])
            lev[ne[nick]] = 1
            ne = ne[~nick]
        if len(ne):
            sa, sb = a[ne].tolist(), b[ne].tolist()
            if c.kind in ("name", "text", "city"):
                jw = cpdist(sa, sb, scorer=JaroWinkler.normalized_similarity, workers=1)
                if c.kind == "name":
                    base = c.labels.index("very similar")
                    lev[ne] = np.where(jw >= 0.92, base, np.where(jw >= 0.8, base + 1, base + 2))
                elif c.kind == "text":
                    lev[ne] = np.where(jw >= 0.9, 1, np.where(jw >= 0.75, 2, 3))
                else:
                    lev[ne] = np.where(jw >= 0.88, 1, 2)
            else:
                d = cpdist(sa, sb, scorer=OSA.distance, workers=1)
                if c.kind == "email":
                    # a typo in the local part at the same domain; a similar local part at another domain is no
                    # evidence beyond the name it is built from, and "jane.smith2@" next to "jane.smith@" is
                    # usually a second person with the same name
                    dom = n["email_domain"]
                    nodig = n["email_nodigit"]
                    typo = (d <= 1) & (dom[ia[ne]] == dom[ib[ne]]) & (nodig[ia[ne]] != nodig[ib[ne]])
                    lev[ne] = np.where(typo, 1, 2)
                elif c.kind == "dob":
                    swap = n["dob_swap"]
                    sw = swap[ia[ne]] == b[ne]
                    lev[ne] = np.where((d <= 1) | sw, 1, np.where(d <= 2, 2, 3))
                elif c.kind == "phone":
                    p7 = n["phone7"]
                    lev[ne] = np.where((d <= 1) | (p7[ia[ne]] == p7[ib[ne]]), 1, 2)
                else:
                    lev[ne] = np.where(d <= 1, 1, 2)
        out[ok, k] = lev
    # first and last name written the wrong way round: count both as "very similar"
    first, last = n["first"], n["last"]
    cand = np.flatnonzero((out[:, 0] > 0) & (out[:, 1] > 0))
    if len(cand):
        sw = (first[i[cand]] == last[j[cand]]) & (last[i[cand]] == first[j[cand]])
        out[cand[sw], 0] = COMPARISONS[0].labels.index("very similar")
        out[cand[sw], 1] = COMPARISONS[1].labels.index("very similar")
    return out


# --------------------------------------------------------------------------------------------------------- blocking
def _key(*parts: list) -> pd.Series:
    """Element-wise "a|b|..." of several value lists; None where any part is missing or empty."""
    arrs = [np.asarray(p, dtype=object) for p in parts]
    ok = np.ones(len(arrs[0]), dtype=bool)
    for a in arrs:
        ok &= pd.notna(a) & (a != "")
    out = np.full(len(ok), None, dtype=object)
    if ok.any():
        joined = arrs[0][ok]
        for a in arrs[1:]:
            joined = joined + "|" + a[ok]
        out[ok] = joined
    return pd.Series(out, dtype=object)


def _narrow(key: pd.Series, *refines: list) -> pd.Series:
    """``key`` where its block is small; for records in blocks above :data:`_NARROW_ABOVE`, ``key|refine``, with
    the next refinement applied to the blocks still above it, and so on: block sizes stay bounded however large
    the base grows (a block is split only where it is large, so nothing is lost where comparing is cheap)."""
    out = key
    for refine in refines:
        counts = out.map(out.value_counts())
        big = (counts > _NARROW_ABOVE).to_numpy()
        if not big.any():
            break
        out = out.copy()
        out[big] = _key(out.tolist(), refine)[big]
    return out


def _nickname_key(first: list, last: list) -> pd.Series:
    """A record whose first name has nicknames (or is one) under its own name and each related name, with its
    surname: "bob smith" and "robert smith" share "robert|smith". The index repeats a record once per key."""
    idx, keys = [], []
    for p, (f, la) in enumerate(zip(first, last, strict=True)):
        rel = related(f)
        if rel and la:
            for g in (f, *rel):
                idx.append(p)
                keys.append(f"{g}|{la}")
    return pd.Series(keys, index=pd.Index(idx, dtype=np.int64), dtype=object)


def _blocking_keys(n: pd.DataFrame) -> dict[str, pd.Series]:
    """Several blocking keys, so that a typo in one field still leaves the pair a candidate through another. Each
    is indexed by record position; the nickname key repeats a record once per related name."""
    col = {c: n[c].tolist() for c in ("first", "last", "dob", "postcode", "email", "phone", "address", "city")}

    def cut(vals: list, lo: int, hi: int | None) -> list:
        return [None if v is None else v[lo:hi] for v in vals]

    sx_last = [nz.soundex(v) for v in col["last"]]
    sx_first = [nz.soundex(v) for v in col["first"]]
    return {
        # A postcode (or surname + city) block grows with the customer base; where one holds more than
        # _NARROW_ABOVE records it is split by a name initial, twice (surname, first name), so that a typo in one
        # initial still leaves the pair a candidate. Small blocks stay whole: nothing is lost where it is cheap.
        "postcode (large blocks by surname initial)": _narrow(_key(col["postcode"]), cut(col["last"], 0, 1),
                                                               cut(col["last"], 0, 3), cut(col["first"], 0, 1)),
        "postcode (large blocks by first-name initial)": _narrow(_key(col["postcode"]),
                                                                  cut(col["first"], 0, 1),
                                                                  cut(col["first"], 0, 3),
                                                                  cut(col["last"], 0, 1)),
        "surname soundex + birth year": _key(sx_last, cut(col["dob"], 0, 4)),
        "first-name soundex + date of birth": _key(sx_first, col["dob"]),
        "first and surname soundex, either order (large blocks by area)": _narrow(
            _key([None if a is None or b is None else min(a, b) for a, b in zip(sx_first, sx_last, strict=True)],
                 [None if a is None or b is None else max(a, b) for a, b in zip(sx_first, sx_last, strict=True)]),
            cut(col["postcode"], 0, 3), cut(col["postcode"], 0, 5)),
        "date of birth": _key(col["dob"]),
        "surname + city (large blocks by first-name initial)": _narrow(_key(col["last"], col["city"]),
                                                                      cut(col["first"], 0, 1),
                                                                      cut(col["first"], 0, 3),
                                                                      cut(col["postcode"], 0, 4)),
        "email local part": _key([None if v is None else v.split("@")[0] for v in col["email"]]),
        "phone last 7 digits": _key(cut(col["phone"], -7, None)),
        "address start + surname initial": _key(cut(col["address"], 0, 10), cut(col["last"], 0, 1)),
        "date of birth + postcode start": _key(col["dob"], cut(col["postcode"], 0, 3)),
        "first name or a nickname of it + surname": _nickname_key(col["first"], col["last"]),
    }


def _block_pairs(key: pd.Series, size: int) -> tuple[np.ndarray, int]:
    """Pair codes (i * size + j, i < j) of records sharing ``key``; blocks above _MAX_BLOCK records are skipped."""
    k = key.dropna()
    if k.empty:
        return np.empty(0, np.int64), 0
    counts = k.map(k.value_counts()).to_numpy()
    skipped = int(k[counts > _MAX_BLOCK].nunique())
    k = k[(counts > 1) & (counts <= _MAX_BLOCK)]
    if k.empty:
        return np.empty(0, np.int64), skipped
    codes, _ = pd.factorize(k.to_numpy(), sort=False)
    idx = k.index.to_numpy(np.int64)
    order = np.lexsort((idx, codes))  # by block, then by record
    idx, codes = idx[order], codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    lengths = np.diff(np.r_[starts, len(codes)])
    # element p of a block starting at s with m records pairs with the elements after it: m - 1 - (p - s) pairs
    block_end = np.repeat(starts + lengths, lengths)
    follow = block_end - np.arange(len(idx)) - 1
    total = int(follow.sum())
    if not total:
        return np.empty(0, np.int64), skipped
    first = np.repeat(np.arange(len(idx)), follow)
    offsets = np.arange(total) - np.repeat(np.cumsum(follow) - follow, follow)
    second = first + 1 + offsets
    return idx[first] * size + idx[second], skipped  # i < j: idx is sorted within a block


def candidate_pairs(n: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict]:
    """Record pairs sharing at least one blocking key."""
    size = len(n)
    codes, stats = [], {}
    for name, key in _blocking_keys(n).items():
        c, skipped = _block_pairs(key, size)
        stats[name] = {"pairs": int(len(c)), "skipped_blocks": skipped}
        codes.append(c)
    u = np.sort(np.concatenate(codes)) if codes else np.empty(0, np.int64)  # sort + adjacent: faster than unique
    u = u[np.r_[True, u[1:] != u[:-1]]] if len(u) else u
    return u // size, u % size, stats


# EM training sessions (as in Splink): pairs blocked on one key; the comparisons tied to that key are not estimated
# in that session (every pair agrees on them), the others are, with u fixed from random pairs.
_SESSIONS = [
    ("date of birth", lambda n: _key(n["dob"].tolist()), {"date_of_birth"}),
    ("postcode", lambda n: _key(n["postcode"].tolist()), {"postcode", "city", "address"}),
    ("first and last name", lambda n: _key(n["first"].tolist(), n["last"].tolist()), {"first_name", "last_name"}),
    ("email", lambda n: _key(n["email"].tolist()), {"email"}),
    ("phone", lambda n: _key(n["phone"].tolist()), {"phone"}),
]


def _em(levels: np.ndarray, active: list[int], m_list: list[np.ndarray], u_list: list[np.ndarray]
        ) -> tuple[float, list[np.ndarray]]:
    """EM for the match share and the m-probabilities of the ``active`` comparisons, u fixed."""
    lam = 0.3
    m_new = [m.copy() for m in m_list]
    for _ in range(_EM_ITERATIONS):
        z = np.full(len(levels), np.log(lam) - np.log1p(-lam))
        for k in active:
            lv = levels[:, k]
            ok = lv >= 0
            z[ok] += np.log(m_new[k][lv[ok]]) - np.log(u_list[k][lv[ok]])
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        new_lam = float(np.clip(p.mean(), 1e-6, 1 - 1e-6))
        for k in active:
            lv = levels[:, k]
            ok = lv >= 0
            if ok.sum() == 0:
                continue
            w = np.bincount(lv[ok], weights=p[ok], minlength=len(m_new[k])) + 1e-3
            m_new[k] = w / w.sum()
        done = abs(new_lam - lam) < 1e-7
        lam = new_lam
        if done:
            break
    return lam, m_new


def fit_weights(n: pd.DataFrame, cols: dict[str, np.ndarray], rng: np.random.Generator) -> dict:
    """Fellegi–Sunter parameters: u from random record pairs; m by EM over training sessions (each comparison's m
    averaged over the sessions that estimate it); the prior (share of all pairs that match) from each session's
    estimated match count divided by the share of matches that agree on the session's key."""
    size = len(n)
    r = min(_RANDOM_PAIRS, size * (size - 1) // 2)
    a = rng.integers(0, size, r)
    b = rng.integers(0, size - 1, r)
    b = b + (b >= a)
    lr = comparison_levels(cols, a, b)
    names = [c.name for c in COMPARISONS]
    u_list, m_init = [], []
    for k, c in enumerate(COMPARISONS):
        nl = len(c.labels)
        cnt = np.bincount(lr[:, k][lr[:, k] >= 0], minlength=nl).astype(float)
        u_list.append((cnt + 0.5) / (cnt.sum() + 0.5 * nl))
        m_init.append(np.array([0.8] + [0.15 / (nl - 2)] * (nl - 2) + [0.05]) if nl > 2 else np.array([0.9, 0.1]))
    estimates: list[list[np.ndarray]] = [[] for _ in COMPARISONS]
    sessions = []
    for label, keyfn, tied in _SESSIONS:
        codes, _ = _block_pairs(keyfn(n), size)
        if len(codes) < 20:
            continue
        if len(codes) > _SESSION_PAIRS:
            codes = rng.choice(codes, _SESSION_PAIRS, replace=False)
        lv = comparison_levels(cols, codes // size, codes % size)
        active = [k for k, nm in enumerate(names) if nm not in tied and (lv[:, k] >= 0).any()]
        if not active:
            continue
        lam, m_s = _em(lv, active, m_init, u_list)
        for k in active:
            estimates[k].append(m_s[k])
        sessions.append((label, tied, lam, len(codes), lv))
    m_list = [np.mean(e, axis=0) if e else m_init[k] for k, e in enumerate(estimates)]
    total_pairs = size * (size - 1) / 2
    match_counts = []
    for _label, tied, lam, n_pairs, _lv in sessions:
        agree = 1.0
        for k, nm in enumerate(names):
            if nm in tied and nm in ("date_of_birth", "postcode", "first_name", "last_name", "email", "phone"):
                present = float((lr[:, k] >= 0).mean())
                agree *= m_list[k][0] * max(present, 1e-6)
        match_counts.append(lam * n_pairs / max(agree, 1e-6))
    n_matches = float(np.median(match_counts)) if match_counts else 0.1 * size
    prior = float(np.clip(n_matches / max(total_pairs, 1.0), 1e-9, 0.5))
    weights = [np.log2(m / u) for m, u in zip(m_list, u_list, strict=True)]
    # a closer level must never weigh less than a farther one
    weights = [np.maximum.accumulate(w[::-1])[::-1] for w in weights]
    return {"m": m_list, "u": u_list, "weights": weights, "prior": prior, "random_pairs": int(r),
            "sessions": {s[0]: {"pairs": int(s[3]), "match_share": float(s[2])} for s in sessions}}


def pair_weights(levels: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """Per pair and comparison, the log2(m/u) weight of its level (0 where a value is missing)."""
    w = np.zeros((len(levels), len(COMPARISONS)))
    for k in range(len(COMPARISONS)):
        lv = levels[:, k]
        ok = lv >= 0
        w[ok, k] = weights[k][lv[ok]]
    return w

