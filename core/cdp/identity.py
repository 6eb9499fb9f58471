"""Identity resolution: which customer records (across Shopify, Klaviyo, GA4, support, ...) are one person.

Two stages feed one identity graph:

1. **Deterministic links** on normalised identifiers — ``source:source_customer_id``, email, the anonymous id a
   visitor carries into login/checkout, phone (E.164). A shared email or phone between records whose first names
   clearly differ (a family address) is not linked here; it is left to the second stage.
2. **Probabilistic links** (Fellegi–Sunter) between records that share one of several blocking keys (postcode,
   date of birth, surname soundex + birth year, first and last name soundex in either order, email local part,
   phone last digits, a first name or a nickname of it with the surname, ...): each comparison (first and last
   name, date of birth, postcode, address, city, phone, email) has levels (a first name that is a known nickname
   of the other has its own, :mod:`core.cdp.names`); u-probabilities come from random record pairs;
   m-probabilities from EM over training sessions (pairs blocked on one field, which that session does not
   estimate, as Splink does); the prior from the sessions' match counts. The sum of log2(m/u) weights plus the
   prior gives a match probability, linked at ``threshold``.

Edges are added strongest first (identifiers, then probability) with a union-find that refuses any union putting
two records with strong contrary evidence into one cluster: a ``do_not_link`` pair, or clearly different dates of
birth / different first and last names / different first names and different emails, unless the rest of that
pair's own evidence favours a match. Processing strongest first means the edge refused is the weakest link of the
strongest chain between the two records, so transitive closure cannot chain different people together. Clusters
are the connected components of the accepted edges (scipy.sparse.csgraph); every accepted edge is a row of
``merges`` with its evidence, every refused one a row of ``rejected`` with the reason.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA, JaroWinkler
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from core.cdp import normalize as nz
from core.cdp.matching import (
    COMPARISONS,
    _blocking_keys,
    candidate_pairs,
    comparison_columns,
    comparison_levels,
    fit_weights,
    pair_weights,
)
from core.cdp.names import same_or_nickname

DEFAULT_THRESHOLD = 0.9
_SCORE_BLOCK = 2_000_000  # candidate pairs scored at a time
FIELDS = ["first_name", "last_name", "email", "phone", "address", "city", "postcode", "date_of_birth"]
ID_FIELDS = ["source", "source_customer_id", "anonymous_id"]
MERGE_COLUMNS = ["record_a", "record_b", "method", "identifiers", "score", "explanation"]
REJECT_COLUMNS = ["record_a", "record_b", "method", "identifiers", "score", "reason"]
# Deterministic identifiers, strongest first: a tool's own customer id beats an email, which beats a shared phone.
_DETERMINISTIC = [("source_id", "src", 4.0), ("email", "email", 3.0), ("anonymous_id", "anon", 2.5),
                  ("phone", "phone", 2.0)]


@dataclass
class Resolution:
    """Result of :func:`resolve`.

    ``clusters``: [record_id, person_id], every input record once. ``merges``: the accepted links that formed the
    clusters, [record_a, record_b, method, identifiers, score, explanation]. ``rejected``: links refused by the
    consistency guard or ``do_not_link``, with the reason. ``model``: the fitted Fellegi–Sunter parameters.
    """

    clusters: pd.DataFrame
    merges: pd.DataFrame
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))
    model: dict = field(default_factory=dict)
    records: pd.DataFrame | None = field(default=None, repr=False)
    prepared: pd.DataFrame | None = field(default=None, repr=False)  # the normalised records (prepare_records)
    threshold: float = DEFAULT_THRESHOLD
    do_not_link: list[tuple[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------- inputs
def _prepare(records: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(records, pd.DataFrame):
        raise ValueError("records must be a DataFrame with a record_id column")
    if "record_id" not in records.columns:
        raise ValueError(f"records: missing column 'record_id' (columns: {', '.join(map(str, records.columns))})")
    rid = records["record_id"]
    missing = rid.isna() | (rid.astype(str).str.strip() == "")
    if missing.any():
        raise ValueError(f"records: record_id is empty in row {int(np.flatnonzero(missing.to_numpy())[0])}")
    rid = rid.astype(str).str.strip()
    dup = rid.duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"records: record_id '{rid.iloc[row]}' appears more than once (row {row})")

    def col(name: str, fn) -> pd.Series:
        if name not in records.columns:
            return pd.Series([None] * len(records), dtype=object)
        memo: dict = {}
        out = []
        for v in records[name].tolist():
            try:
                r = memo[v]
            except KeyError:
                r = memo[v] = fn(v)
            except TypeError:  # unhashable cell
                r = fn(v)
            out.append(r)
        return pd.Series(out, dtype=object)

    n = pd.DataFrame({"rid": pd.Series(rid.to_numpy(), dtype=object)})
    n["first"] = col("first_name", nz.normalize_name)
    n["last"] = col("last_name", nz.normalize_name)
    n["email"] = col("email", nz.normalize_email)
    n["phone"] = col("phone", nz.normalize_phone)
    n["address"] = col("address", nz.normalize_address)
    n["city"] = col("city", nz.normalize_city)
    n["postcode"] = col("postcode", nz.normalize_postcode)
    n["dob"] = col("date_of_birth", nz.normalize_dob)
    scid = col("source_customer_id", lambda v: None if nz.is_blank(v) else str(v).strip())
    if "source" in records.columns:
        src = col("source", lambda v: "" if nz.is_blank(v) else str(v).strip().casefold())
        n["src"] = pd.Series([None if c is None else f"{s}:{c}" for s, c in zip(src, scid, strict=True)],
                             dtype=object)
    else:
        n["src"] = scid
    n["anon"] = col("anonymous_id", lambda v: None if nz.is_blank(v) else str(v).strip())
    # per-record helpers for the comparisons
    n["email_domain"] = pd.Series([None if e is None else e.rsplit("@", 1)[1] for e in n["email"]], dtype=object)
    n["email_nodigit"] = pd.Series([None if e is None else re.sub(r"\d", "", e) for e in n["email"]], dtype=object)
    n["dob_swap"] = pd.Series([None if d is None else d[:4] + d[6:8] + d[4:6] for d in n["dob"]], dtype=object)
    n["phone7"] = pd.Series([None if p is None else p[-7:] for p in n["phone"]], dtype=object)
    return n



# ------------------------------------------------------------------------------------------ consistency guard
class _Guard:
    """Strong contrary evidence between two records: they may not end up in one cluster."""

    def __init__(self, n: pd.DataFrame, do_not_link: set[tuple[int, int]]):
        self.n = n
        self.score = None  # (a, b) -> the pair's own evidence in bits (Bayes factor, log2), set once fitted
        self.first = n["first"].to_numpy(dtype=object)
        self.last = n["last"].to_numpy(dtype=object)
        self.dob = n["dob"].to_numpy(dtype=object)
        self.email = n["email"].to_numpy(dtype=object)
        self.rid = n["rid"].to_numpy(dtype=object)
        self.dnl = do_not_link
        self._cache: dict[tuple[int, int], str | None] = {}

    def first_far(self, a: int, b: int) -> bool:
        fa, fb = self.first[a], self.first[b]
        if fa is None or fb is None or same_or_nickname(fa, fb):
            return False
        if (len(fa) == 1 or len(fb) == 1) and fa[0] == fb[0]:
            return False  # an initial
        if self.last[b] is not None and JaroWinkler.normalized_similarity(fa, self.last[b]) >= 0.9:
            return False  # names swapped
        return JaroWinkler.normalized_similarity(fa, fb) < 0.75

    def last_far(self, a: int, b: int) -> bool:
        la, lb = self.last[a], self.last[b]
        if la is None or lb is None or la == lb:
            return False
        if self.first[b] is not None and JaroWinkler.normalized_similarity(la, self.first[b]) >= 0.9:
            return False
        return JaroWinkler.normalized_similarity(la, lb) < 0.75

    def dob_far(self, a: int, b: int) -> bool:
        da, db = self.dob[a], self.dob[b]
        if da is None or db is None or da == db:
            return False
        if da[:4] == db[:4] and da[4:6] == db[6:8] and da[6:8] == db[4:6]:
            return False
        return OSA.distance(da, db) > 2

    def pair(self, a: int, b: int) -> str | None:
        key = (a, b) if a < b else (b, a)
        if key in self._cache:
            return self._cache[key]
        reason = None
        if key in self.dnl:
            reason = f"do-not-link pair ({self.rid[key[0]]}, {self.rid[key[1]]})"
        elif self.dob_far(a, b):
            reason = f"dates of birth differ ({_fmt_dob(self.dob[a])} vs {_fmt_dob(self.dob[b])})"
        elif self.first_far(a, b):
            if self.last_far(a, b):
                reason = f"first and last names differ ('{self.first[a]} {self.last[a]}' vs " \
                         f"'{self.first[b]} {self.last[b]}')"
            elif self.email[a] is not None and self.email[b] is not None and self.email[a] != self.email[b]:
                reason = f"first names differ ('{self.first[a]}' vs '{self.first[b]}') and emails differ"
        if reason and key not in self.dnl and self.score is not None:
            # a contradiction is decisive unless the rest of the pair's own evidence favours a match
            w = self.score(a, b)
            reason = None if w > 0 else f"{reason}; the pair's own evidence is {w:+.1f} bits"
        self._cache[key] = reason
        return reason

    def clusters(self, ma: list[int], mb: list[int]) -> str | None:
        for a in ma:
            for b in mb:
                reason = self.pair(a, b)
                if reason:
                    if len(ma) > 1 or len(mb) > 1:
                        return f"{reason} between records {self.rid[a]} and {self.rid[b]} of the two clusters"
                    return reason
        return None


def _fmt_dob(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}"


# ------------------------------------------------------------------------------------------------------ edges
def _deterministic_edges(n: pd.DataFrame, guard: _Guard) -> tuple[list[tuple], list[tuple]]:
    """(i, j, method, value) for records sharing an identifier (all pairs in groups of up to 12 records, a star
    from the first record in larger ones); pairs whose first names clearly differ (a shared family email or phone)
    are not linked here but left to probabilistic matching."""
    edges, refused = [], []
    for method, col, _strength in _DETERMINISTIC:
        s = n[col].dropna()
        if s.empty:
            continue
        df = pd.DataFrame({"v": s.to_numpy(), "i": s.index.to_numpy(np.int64)}).sort_values(["v", "i"])
        size = df.groupby("v", sort=False)["i"].transform("size").to_numpy()
        df = df[size > 1]
        size = size[size > 1]
        small, big = df[size <= 12], df[size > 12]
        m = small.merge(small, on="v")
        m = m[m["i_x"] < m["i_y"]]
        first = big.groupby("v", sort=False)["i"].transform("first")
        star = pd.DataFrame({"v": big["v"].to_numpy(), "i_x": first.to_numpy(), "i_y": big["i"].to_numpy()})
        star = star[star["i_x"] != star["i_y"]]
        allp = pd.concat([m[["v", "i_x", "i_y"]], star], ignore_index=True)
        for value, a, b in zip(allp["v"].tolist(), allp["i_x"].tolist(), allp["i_y"].tolist(), strict=True):
            if guard.first_far(a, b):
                refused.append((a, b, method, value,
                                f"shared {method.replace('_', ' ')} but first names differ ('{guard.first[a]}' "
                                f"vs '{guard.first[b]}'): left to probabilistic matching"))
            else:
                edges.append((a, b, method, value))
    return edges, refused


_DET_TEXT = {
    "email": ("email", "same email after normalisation"),
    "phone": ("phone", "same phone number in E.164"),
    "source_id": ("source_customer_id", "same customer id in the same source"),
    "anonymous_id": ("anonymous_id", "same anonymous visitor id (identified at login or checkout)"),
}


def _explain_deterministic(raw: dict[str, np.ndarray], a: int, b: int, method: str, value: str) -> str:
    col, text = _DET_TEXT[method]
    if method in ("email", "phone") and col in raw:
        ra, rb = raw[col][a], raw[col][b]
        if str(ra) != str(rb):
            return f"{text}: '{ra}' and '{rb}' → {value}"
    return f"{text}: {value}"


def _explain_probabilistic(n: dict[str, np.ndarray], lv: np.ndarray, w: np.ndarray, a: int, b: int, prob: float,
                           prior_bits: float, threshold: float) -> tuple[str, str]:
    parts, ids = [], []
    for k, c in enumerate(COMPARISONS):
        if lv[k] < 0:
            continue
        va, vb = n[c.col][a], n[c.col][b]
        if c.col == "dob":
            va, vb = _fmt_dob(va), _fmt_dob(vb)
        label = c.labels[lv[k]]
        shown = f"'{va}'" if va == vb else f"'{va}' vs '{vb}'"
        parts.append(f"{c.name} {label} ({shown}, {w[k]:+.1f})")
        if w[k] > 0:
            ids.append(c.name + ("=" if lv[k] == 0 else "~"))
    total = float(w.sum())
    text = (f"match probability {prob:.4f} ≥ {threshold:g}: " + "; ".join(parts)
            + f"; evidence {total:+.1f} bits on a prior of {prior_bits:+.1f}")
    return ",".join(ids), text


# ----------------------------------------------------------------------------------------------------- person ids
def _new_id(rid: str, taken: set[str]) -> str:
    salt = 0
    while True:
        key = rid if salt == 0 else f"{rid}#{salt}"
        pid = "p_" + hashlib.sha1(key.encode()).hexdigest()[:12]
        if pid not in taken:
            return pid
        salt += 1


def _assign_ids(rids: np.ndarray, labels: np.ndarray, previous: pd.DataFrame | None) -> np.ndarray:
    """Person id per cluster: the earliest previous person id of its records (earliest = first row in
    ``previous``); when a previous person was split, the cluster holding most of its records keeps the id.
    Other clusters get ``p_`` + a hash of their smallest record id."""
    n_comp = int(labels.max()) + 1 if len(labels) else 0
    comp_min = pd.Series(rids).groupby(labels).min().to_numpy() if len(labels) else np.array([])
    out: list[str | None] = [None] * n_comp
    taken: set[str] = set()
    if previous is not None and len(previous):
        if not {"record_id", "person_id"} <= set(previous.columns):
            raise ValueError("previous: needs columns record_id and person_id (an earlier clusters frame)")
        prev = previous.dropna(subset=["record_id", "person_id"])
        pid_of = dict(zip(prev["record_id"].astype(str), prev["person_id"].astype(str), strict=True))
        rank = {p: r for r, p in enumerate(pd.unique(prev["person_id"].astype(str)))}
        taken |= set(rank)
        claims = {}
        for rid, lab in zip(rids, labels, strict=True):
            pid = pid_of.get(rid)
            if pid is not None:
                claims[(lab, pid)] = claims.get((lab, pid), 0) + 1
        order = sorted(claims.items(), key=lambda kv: (rank[kv[0][1]], -kv[1], comp_min[kv[0][0]]))
        used: set[str] = set()
        for (lab, pid), _count in order:
            if out[lab] is None and pid not in used:
                out[lab] = pid
                used.add(pid)
    for lab in np.argsort(comp_min, kind="stable"):
        if out[lab] is None:
            out[lab] = _new_id(str(comp_min[lab]), taken)
            taken.add(out[lab])
    return np.array(out, dtype=object)[labels] if len(labels) else np.array([], dtype=object)


# ------------------------------------------------------------------------------------------------------ resolve
def resolve(records: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, previous: pd.DataFrame | None = None,
            do_not_link: list[tuple[str, str]] | None = None, model: dict | None = None) -> Resolution:
    """Cluster ``records`` into persons. ``threshold`` is the match probability at which a probabilistic link is
    made (deterministic identifier links do not depend on it). ``previous`` (an earlier clusters frame) keeps
    person ids stable; ``do_not_link`` pairs of record ids never share a cluster (the weakest evidence between them
    is cut and reported in ``rejected``). ``model``: Fellegi–Sunter parameters to use instead of fitting them (an
    earlier ``Resolution.model``), e.g. when resolving a small neighbourhood of a large base."""
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must be a match probability strictly between 0 and 1, got {threshold}")
    threshold = float(threshold)
    n = _prepare(records)
    size = len(n)
    raw = {c: records[c].to_numpy(dtype=object) for c in ("email", "phone") if c in records.columns}
    rids = n["rid"].to_numpy(dtype=object)
    pos = {r: p for p, r in enumerate(rids)}
    dnl_pairs = [(str(a).strip(), str(b).strip()) for a, b in (do_not_link or [])]
    dnl: set[tuple[int, int]] = set()
    for a, b in dnl_pairs:
        for r in (a, b):
            if r not in pos:
                raise ValueError(f"do_not_link: record_id '{r}' is not among the records")
        if a == b:
            raise ValueError(f"do_not_link: pair ({a}, {b}) names the same record twice")
        pa, pb = pos[a], pos[b]
        dnl.add((min(pa, pb), max(pa, pb)))
    guard = _Guard(n, dnl)

    det, det_refused = _deterministic_edges(n, guard)
    strength = {m: s for m, _c, s in _DETERMINISTIC}
    det.sort(key=lambda e: (-strength[e[2]], e[0], e[1]))

    rng = np.random.default_rng(20240611)
    ci, cj, block_stats = candidate_pairs(n) if size > 1 else (np.empty(0, int), np.empty(0, int), {})
    n_candidates = int(len(ci))
    cols = comparison_columns(n)
    model = _model_from_summary(model) if model else fit_weights(n, cols, rng) if size > 1 else {
        "prior": 0.5, "weights": [np.zeros(len(c.labels)) for c in
                                                                          COMPARISONS]}
    prior_bits = math.log2(model["prior"] / (1 - model["prior"]))
    scored = {"codes": np.empty(0, np.int64), "evidence": np.empty(0)}

    def pair_evidence(a: int, b: int) -> float:
        """The pair's own evidence in bits: from the scored candidates, else computed for this pair."""
        code = min(a, b) * size + max(a, b)
        codes = scored["codes"]
        p = int(np.searchsorted(codes, code))
        if p < len(codes) and codes[p] == code:
            return float(scored["evidence"][p])
        return float(pair_weights(comparison_levels(cols, np.array([a]), np.array([b])), model["weights"]).sum())

    guard.score = pair_evidence

    parent = list(range(size))
    members: dict[int, list[int]] = {}  # root -> records, for roots of clusters with more than one record

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    merges, rejected = [], []
    for a, b, method, value, text in det_refused:
        rejected.append((rids[a], rids[b], method, f"{method}={value}", 1.0, f"not linked: {text}"))
    accepted_i, accepted_j = [], []

    def try_union(a: int, b: int) -> str | None:
        ra, rb = find(a), find(b)
        if ra == rb:
            return "same"
        ma, mb = members.get(ra, [ra]), members.get(rb, [rb])
        reason = guard.clusters(ma, mb)
        if reason:
            return reason
        if len(ma) < len(mb):
            ra, rb, ma, mb = rb, ra, mb, ma
        parent[rb] = ra
        members[ra] = ma + mb
        members.pop(rb, None)
        accepted_i.append(a)
        accepted_j.append(b)
        return None

    for a, b, method, value in det:
        r = try_union(a, b)
        if r is None:
            merges.append((rids[a], rids[b], method, f"{method}={value}", 1.0,
                           _explain_deterministic(raw, a, b, method, value)))
        elif r != "same":
            rejected.append((rids[a], rids[b], method, f"{method}={value}", 1.0, f"not linked: {r}"))

    # score only candidate pairs that the identifiers have not already put in one cluster
    if len(ci):
        roots = np.fromiter((find(x) for x in range(size)), np.int64, size)
        open_pairs = roots[ci] != roots[cj]
        ci, cj = ci[open_pairs], cj[open_pairs]
    # score in blocks so that memory holds per pair only its code and evidence (levels and weights, 72 bytes a
    # pair, only for one block and for the pairs above the threshold)
    evidence = np.empty(len(ci))
    kept_idx, kept_lv, kept_pw = [], [], []
    for lo in range(0, len(ci), _SCORE_BLOCK):
        hi = min(lo + _SCORE_BLOCK, len(ci))
        lv_b = comparison_levels(cols, ci[lo:hi], cj[lo:hi])
        pw_b = pair_weights(lv_b, model["weights"])
        evidence[lo:hi] = pw_b.sum(axis=1)
        above = np.flatnonzero(evidence[lo:hi] + prior_bits >= math.log2(threshold / (1 - threshold)) - 1e-9)
        kept_idx.append(above + lo)
        kept_lv.append(lv_b[above])
        kept_pw.append(pw_b[above])
    scored["codes"], scored["evidence"] = ci * size + cj, evidence  # still sorted
    prob = 1.0 / (1.0 + np.exp2(-np.clip(evidence + prior_bits, -60, 60)))
    cand = np.concatenate(kept_idx) if kept_idx else np.empty(0, np.int64)
    lv = np.concatenate(kept_lv) if kept_lv else np.empty((0, len(COMPARISONS)), np.int8)
    pw = np.concatenate(kept_pw) if kept_pw else np.empty((0, len(COMPARISONS)))
    sel = np.flatnonzero(prob[cand] >= threshold)
    order = sel[np.lexsort((cj[cand[sel]], ci[cand[sel]], -prob[cand[sel]]))]
    arrays = cols
    for q in order:
        e = int(cand[q])
        a, b = int(ci[e]), int(cj[e])
        r = try_union(a, b)
        if r == "same":
            continue
        ids, text = _explain_probabilistic(arrays, lv[q], pw[q], a, b, float(prob[e]), prior_bits, threshold)
        if r is None:
            merges.append((rids[a], rids[b], "probabilistic", ids, float(prob[e]), text))
        else:
            rejected.append((rids[a], rids[b], "probabilistic", ids, float(prob[e]), f"not linked: {r}"))

    graph = coo_matrix((np.ones(len(accepted_i)), (accepted_i, accepted_j)), shape=(size, size))
    _n_comp, labels = connected_components(graph, directed=False)
    person = _assign_ids(rids, labels, previous)
    clusters = pd.DataFrame({"record_id": rids, "person_id": person})
    model_out = _model_summary(model, block_stats, n_candidates)
    return Resolution(
        clusters=clusters,
        merges=pd.DataFrame(merges, columns=MERGE_COLUMNS),
        rejected=pd.DataFrame(rejected, columns=REJECT_COLUMNS),
        model=model_out,
        records=records,
        prepared=n,
        threshold=threshold,
        do_not_link=dnl_pairs,
    )


def _model_summary(model: dict, block_stats: dict, candidates: int) -> dict:
    out = {"prior": float(model.get("prior", 0.0)), "candidate_pairs": candidates,
           "sessions": model.get("sessions", {}), "blocking": block_stats, "comparisons": {}}
    if "m" in model:
        for k, c in enumerate(COMPARISONS):
            out["comparisons"][c.name] = {
                lab: {"m": float(model["m"][k][li]), "u": float(model["u"][k][li]),
                      "weight": float(model["weights"][k][li])}
                for li, lab in enumerate(c.labels)
            }
    return out


# A level added after a model was stored reads as the level after it (first_name "nickname" as "very similar":
# the weight such a pair had before the level existed).
_LEVEL_FALLBACK = {"nickname": "very similar"}


def _model_from_summary(summary: dict) -> dict:
    """The parameters :func:`resolve` scores with, back from a ``Resolution.model`` summary (e.g. read from JSON)."""

    def level(comp: dict, lab: str) -> dict:
        return comp[lab] if lab in comp or lab not in _LEVEL_FALLBACK else comp[_LEVEL_FALLBACK[lab]]

    try:
        comps = summary["comparisons"]
        weights = [np.array([float(level(comps[c.name], lab)["weight"]) for lab in c.labels]) for c in COMPARISONS]
        m = [np.array([float(level(comps[c.name], lab)["m"]) for lab in c.labels]) for c in COMPARISONS]
        u = [np.array([float(level(comps[c.name], lab)["u"]) for lab in c.labels]) for c in COMPARISONS]
        prior = float(summary["prior"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"model: not a resolution model summary (missing or invalid {e})") from e
    if not 0.0 < prior < 1.0:
        raise ValueError(f"model: prior must be strictly between 0 and 1, got {prior}")
    return {"prior": prior, "weights": weights, "m": m, "u": u, "sessions": summary.get("sessions", {})}


def prepare_records(records: pd.DataFrame) -> pd.DataFrame:
    """The normalised form of ``records`` that resolution compares (one row per record, same order); keep it
    to resolve neighbourhoods later without normalising the whole base again (:func:`resolve_neighbourhood`)."""
    return _prepare(records)


_NEIGHBOUR_FIELDS = ("email", "phone", "anon", "src", "postcode", "last", "first", "dob", "phone7")


def resolve_neighbourhood(records: pd.DataFrame, prepared: pd.DataFrame, changed: set[str],
                          previous: pd.DataFrame, model: dict, threshold: float = DEFAULT_THRESHOLD
                          ) -> tuple[Resolution, np.ndarray]:
    """Re-resolve only around ``changed`` record ids (new or changed records) of a base already resolved into
    ``previous``, with the base's fitted ``model``; for a webhook on a large base, where a full resolution takes
    minutes.

    The neighbourhood: the changed records, every record sharing an identifier (email, phone, browser id, source
    customer id) or one of resolution's blocking keys with one of them, and then every record of every person
    those belong to, so that no person is split between the part re-resolved and the rest. Returns the
    neighbourhood's resolution (its clusters, merges and rejected links replace the previous ones for those
    records) and the boolean mask of the neighbourhood over ``records``. ``prepared`` is
    :func:`prepare_records` of ``records`` (same order). Blocks are formed within the neighbourhood, so a block
    that the whole base would have split or skipped for its size is compared whole here: the neighbourhood may
    see slightly more candidate pairs than a full resolution, never fewer.
    """
    if len(prepared) != len(records):
        raise ValueError(f"prepared has {len(prepared)} rows for {len(records)} records")
    rid = prepared["rid"]
    ch = rid.isin(changed).to_numpy()
    near = ch.copy()
    if ch.any():
        chn = prepared[ch]
        for f in _NEIGHBOUR_FIELDS:  # a cheap superset: anything sharing one normalised field
            vals = set(chn[f].dropna())
            if vals:
                near |= prepared[f].isin(vals).to_numpy()
        idx = np.flatnonzero(near)
        sub = prepared.iloc[idx].reset_index(drop=True)
        sub_ch = ch[idx]
        keep = sub_ch.copy()
        for f in ("email", "phone", "anon", "src"):
            vals = set(sub.loc[sub_ch, f].dropna())
            if vals:
                keep |= sub[f].isin(vals).to_numpy()
        for key in _blocking_keys(sub).values():  # indexed by position in sub, a record possibly repeated
            pos_k = key.index.to_numpy(np.int64)
            vals = set(key[sub_ch[pos_k]].dropna())
            if vals:
                keep[pos_k[key.isin(vals).to_numpy()]] = True
        near = np.zeros(len(prepared), dtype=bool)
        near[idx[keep]] = True
    # whole persons only
    prev = previous.set_index("record_id")["person_id"]
    persons = set(prev.reindex(rid[near].to_numpy()).dropna())
    if persons:
        their = set(previous.loc[previous["person_id"].isin(persons), "record_id"])
        near |= rid.isin(their).to_numpy()
    sub_prev = previous[previous["record_id"].isin(set(rid[near]))]
    res = resolve(records[near].reset_index(drop=True), threshold=threshold, previous=sub_prev, model=model)
    return res, near


def split(resolution: Resolution, record_ids: list[str]) -> Resolution:
    """Undo a wrong merge: recompute with every pair of ``record_ids`` marked do-not-link (added to the pairs the
    resolution already had), keeping person ids stable against the current clusters."""
    if resolution.records is None:
        raise ValueError("split: this resolution does not carry its input records; call resolve(..., do_not_link)")
    ids = [str(r) for r in record_ids]
    if len(ids) < 2:
        raise ValueError("split: give at least two record ids to separate")
    pairs = list(resolution.do_not_link) + [(a, b) for p, a in enumerate(ids) for b in ids[p + 1:]]
    return resolve(resolution.records, threshold=resolution.threshold, previous=resolution.clusters,
                   do_not_link=pairs)
