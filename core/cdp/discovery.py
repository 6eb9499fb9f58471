"""AI-powered segment discovery: the groups customers fall into, found by clustering the scored-customers frame,
each described by the traits that set it apart, named from those traits and translated into a segment rule.

Why: a marketer asks "which groups do my customers form?" before knowing which rule to write. Clustering finds the
groups; a shallow cluster-vs-rest decision tree turns each into a rule of the segment language
(:mod:`core.cdp.segments`), so a discovered group can be saved as an ordinary segment, and the rule's precision and
recall against the cluster say how faithfully it does so.

Method: money and counts are ``log1p``-ed, every feature robust-scaled (median, IQR, else the standard deviation,
never less than a floor so small differences do not become clusters) and clipped to +-5; a missing value becomes the
median plus an indicator per distinct missing pattern (``never_ordered`` for persons without an order). KMeans is
fitted on ``sample`` random rows for each k of ``k_range``; the k with the highest silhouette on 5,000 of them wins
(ties: the smaller k) and assigns every row. Rules use only ``gt``, ``lte``, ``eq``, ``ne``, ``is_set`` and
``is_not_set``, evaluated here as the engine does (a missing value matches no comparison, like SQL NULL).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.tree import DecisionTreeClassifier

from core.cdp.fields import FIELD_BY_NAME

__all__ = ["Trait", "DiscoveredSegment", "Discovery", "discover_segments", "MIN_PERSONS"]

MIN_PERSONS = 200
SILHOUETTE_SAMPLE = 5_000
MAX_TRAITS = 5
_LOG = ("lifetime_value", "total_orders", "avg_order_value", "days_since_last_order", "subscription_mrr",
        "support_tickets", "reviews", "referrals", "predicted_ltv")
_LINEAR = ("email_engagement_score", "churn_risk")
_INTEGER = {"total_orders", "days_since_last_order", "email_engagement_score", "support_tickets", "reviews",
            "referrals"}
#: least spread a feature is divided by: a factor of e for money and counts, 10 engagement points, 0.1 churn risk
_FLOOR = {"email_engagement_score": 10.0, "churn_risk": 0.1}
_FLAGS = {"active_subscriber": "active", "paused_subscriber": "paused", "cancelled_subscriber": "cancelled"}
_LABELS = {"active_subscriber": "Active subscriber", "paused_subscriber": "Paused subscription",
           "cancelled_subscriber": "Cancelled subscription", "never_ordered": "Never ordered"}
#: feature -> (adjective when above the rest, words after "with" when above, the same two when below)
_WORDS: dict[str, tuple[str | None, str, str | None, str]] = {
    "lifetime_value": ("high-value", "high lifetime value", "low-value", "low lifetime value"),
    "predicted_ltv": ("high-potential", "high predicted value", "low-potential", "low predicted value"),
    "avg_order_value": ("big-basket", "large orders", "small-basket", "small orders"),
    "total_orders": ("frequent", "many orders", "infrequent", "few orders"),
    "days_since_last_order": ("lapsed", "no recent order", "recent", "a recent order"),
    "churn_risk": ("at-risk", "high churn risk", "loyal", "low churn risk"),
    "email_engagement_score": ("engaged", "high email engagement", "unengaged", "low email engagement"),
    "subscription_mrr": ("premium", "high subscription fees", None, "low subscription fees"),
    "support_tickets": (None, "frequent support tickets", None, "few support tickets"),
    "reviews": (None, "many reviews", None, "few reviews"),
    "referrals": (None, "many referrals", None, "few referrals"),
    "active_subscriber": (None, "an active subscription", None, "no active subscription"),
    "paused_subscriber": (None, "a paused subscription", None, "no paused subscription"),
    "cancelled_subscriber": (None, "a cancelled subscription", None, "no cancelled subscription"),
    "never_ordered": (None, "no order yet", None, "orders placed"),
}
_CONCEPT = {"predicted_ltv": "lifetime_value", "paused_subscriber": "active_subscriber",
            "cancelled_subscriber": "active_subscriber"}  # a name says each concept once


@dataclass(frozen=True)
class Trait:
    """A feature on which a cluster differs from the rest: ``value`` (cluster mean) and ``overall`` (everyone's
    mean) in natural units (shares for indicators, churn risk 0-1); ``z`` the gap in standardised units."""

    field: str
    label: str
    value: float
    overall: float
    z: float


@dataclass(frozen=True)
class DiscoveredSegment:
    """One cluster: its size, averages, distinguishing traits, name and the rule that best describes it."""

    name: str
    size: int
    share: float
    avg_ltv: float | None
    avg_predicted_ltv: float | None
    avg_churn_risk: float | None
    traits: tuple[Trait, ...]
    rule: dict
    precision: float
    recall: float

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "traits": [asdict(t) for t in self.traits]}


@dataclass(frozen=True)
class Discovery:
    """The clustering: segments (largest first), the chosen k, its silhouette and every k's, persons in the frame
    and in the fitted sample, the clustering features; ``labels[i]`` is row i's segment index (not in JSON)."""

    segments: tuple[DiscoveredSegment, ...]
    k: int
    silhouette: float
    silhouette_by_k: dict[int, float]
    n_persons: int
    n_sampled: int
    features: tuple[str, ...]
    labels: np.ndarray = field(repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "silhouette": self.silhouette,
                "silhouette_by_k": {str(k): v for k, v in self.silhouette_by_k.items()},
                "n_persons": self.n_persons, "n_sampled": self.n_sampled, "features": list(self.features),
                "segments": [s.to_json() for s in self.segments]}


class _Data:
    """The columns that exist (numbers as floats, NaN for missing; the lower-cased subscription status, "" where
    missing, ``present`` where not), and rules evaluated over them with the engine's semantics."""

    def __init__(self, frame: pd.DataFrame) -> None:
        num = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(float, na_value=np.nan)
               for c in (*_LOG, *_LINEAR) if c in frame}
        self.num = {c: x for c, x in num.items() if not np.isnan(x).all()}
        s = frame["subscription_status"] if "subscription_status" in frame else pd.Series(pd.NA, frame.index)
        s = s.astype("string").str.lower()
        self.present, self.status = s.notna().to_numpy(bool), s.fillna("").to_numpy(object)

    def rule_values(self, name: str) -> np.ndarray:
        """A field as rules compare it: churn risk in percent, a status flag NaN where the status is missing."""
        if name in _FLAGS:
            return np.where(self.present, (self.status == _FLAGS[name]).astype(float), np.nan)
        return self.num[name] * 100 if name == "churn_risk" else self.num[name]

    def mask(self, node: dict) -> np.ndarray:
        """Who matches a rule made of the operators :func:`discover_segments` emits."""
        for kind, reduce in (("all", np.logical_and), ("any", np.logical_or)):
            if kind in node:
                parts = [self.mask(c) for c in node[kind]]
                return reduce.reduce(parts) if parts else np.full(len(self.present), kind == "all")
        f, op, v = node["field"], node["op"], node.get("value")
        if f == "active_subscriber":
            return self.present & ((self.status == "active") == v)
        if f == "subscription_status":
            if op in ("is_set", "is_not_set"):
                return (self.present & (self.status != "")) == (op == "is_set")
            return self.present & ((self.status == v) == (op == "eq"))
        x = self.rule_values(f)
        if op in ("is_set", "is_not_set"):
            return np.isnan(x) == (op == "is_not_set")
        return (x > v) if op == "gt" else (x <= v)


def _features(data: _Data) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Candidate clustering features in natural units, and how each is scaled (log, linear or flag)."""
    values = dict(data.num)
    kinds = {c: "log" if c in _LOG else "linear" for c in values}
    for name, status in _FLAGS.items():
        values[name], kinds[name] = (data.status == status).astype(float), "flag"
    orders, days = values.get("total_orders"), values.get("days_since_last_order")
    never = (np.nan_to_num(orders) <= 0) if orders is not None else np.isnan(days) if days is not None else None
    seen = [] if never is None else [never]
    if never is not None:
        values["never_ordered"], kinds["never_ordered"] = never.astype(float), "flag"
    for col in data.num:
        miss = np.isnan(values[col])
        if miss.any() and not any(np.array_equal(miss, m) for m in seen):
            seen.append(miss)
            values[f"{col}_missing"], kinds[f"{col}_missing"] = miss.astype(float), "flag"
    return values, kinds


def _standardise(values: dict[str, np.ndarray], kinds: dict[str, str], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The scaled features, centre and spread fitted on the sampled rows; features constant there are left out."""
    out = {}
    for name, x in values.items():
        s = x[rows][~np.isnan(x[rows])]
        if len(s) == 0 or s.min() == s.max():
            continue
        if kinds[name] != "flag":
            t = np.log1p(np.clip(x, 0, None)) if kinds[name] == "log" else x
            q25, med, q75 = np.nanpercentile(t[rows], [25, 50, 75])
            spread = max(q75 - q25 if q75 > q25 else float(np.nanstd(t[rows])), _FLOOR.get(name, 1.0))
            x = np.clip((t - med) / spread, -5, 5)
        out[name] = np.nan_to_num(x, nan=0.0).astype(np.float32)
    return out


def _group_means(x: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the non-missing values per group (NaN for none) and how many there were."""
    ok = ~np.isnan(x)
    n = np.bincount(labels[ok], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(labels[ok], weights=x[ok], minlength=k) / n, n


def _traits(values: dict, scaled: dict, labels: np.ndarray, k: int) -> list[list[Trait]]:
    """Per cluster, the features by how far the cluster's mean is from the rest's, over the persons who have a
    value (at least half of the cluster): those with |z| >= 0.5, or else the furthest."""
    out: list[list[Trait]] = [[] for _ in range(k)]
    sizes = np.bincount(labels, minlength=k)
    for name, x in scaled.items():
        ok = ~np.isnan(values[name])
        col, n_all = x[ok].astype(float), int(ok.sum())
        sd, total = col.std(), col.sum()
        means, n = _group_means(np.where(ok, x, np.nan), labels, k)
        nat, overall = _group_means(values[name], labels, k)[0], float(np.nanmean(values[name]))
        label = _LABELS.get(name) or (FIELD_BY_NAME[name].label if name in FIELD_BY_NAME else
                                      f"{FIELD_BY_NAME[name.removesuffix('_missing')].label} missing")
        for c in range(k):
            if sd > 0 and 0.5 * sizes[c] <= n[c] < n_all:
                z = (means[c] - (total - means[c] * n[c]) / (n_all - n[c])) / sd
                out[c].append(Trait(name, label, float(nat[c]), overall, round(float(z), 3)))
    for ts in out:
        ts.sort(key=lambda t: (-abs(t.z), t.field))
    return [[t for t in ts if abs(t.z) >= 0.5] or ts[:1] for ts in out]


def _noun(values: dict, members: np.ndarray) -> tuple[str, set[str]]:
    """Who the cluster is, from what two thirds of it share (never ordered, a subscription status) or its median
    order count, and the concepts this already says."""
    for name, noun in (("never_ordered", "newsletter contacts who never bought"),
                       ("active_subscriber", "subscribers"), ("paused_subscriber", "paused subscribers"),
                       ("cancelled_subscriber", "former subscribers")):
        if name in values and values[name][members].mean() >= 2 / 3:
            return noun, ({"never_ordered", "total_orders", "lifetime_value", "avg_order_value", "churn_risk",
                           "days_since_last_order"} if name == "never_ordered" else {"active_subscriber"})
    orders = values["total_orders"][members] if "total_orders" in values else np.zeros(0)
    median = float(np.median(orders[~np.isnan(orders)])) if (~np.isnan(orders)).any() else math.nan
    if median <= 1:
        return "one-time buyers", {"total_orders", "never_ordered"}
    return ("repeat buyers", {"total_orders"}) if median >= 3 else ("customers", set())


def _words(t: Trait) -> tuple[str | None, str]:
    up_adj, up, down_adj, down = _WORDS[t.field]
    return (up_adj, up) if t.z > 0 else (down_adj, down)


def _name(traits: list[Trait], noun: str, said: set[str], extra: int) -> str:
    """[adjective of the first trait that has one] noun [with the first trait above the rest that has none (and the
    next ``extra`` traits)]: traits in |z| order, one per concept, none the noun already says."""
    free, seen = [], set(said)
    for t in traits:
        concept = _CONCEPT.get(t.field, t.field)
        if t.field in _WORDS and concept not in seen:
            seen.add(concept)
            free.append(t)
    adj = next((t for t in free if _words(t)[0]), None)
    qual = next((t for t in free if not _words(t)[0] and t.z >= 1), None)
    tail = ([qual] if qual else []) + [t for t in free if t is not adj and t is not qual][:extra]
    name = f"{_words(adj)[0]} {noun}" if adj else noun
    if tail:
        name += " with " + " and ".join(_words(t)[1] for t in tail)
    return name[0].upper() + name[1:]


def _names(traits: list[list[Trait]], nouns: list[tuple[str, set[str]]]) -> list[str]:
    """Names, clusters of the same name told apart by their next trait (then, if none is left, by a number)."""
    extra = [0] * len(traits)
    for _ in range(MAX_TRAITS + 1):
        names = [_name(t, n, said, e) for t, (n, said), e in zip(traits, nouns, extra, strict=True)]
        dups = {n for n in names if names.count(n) > 1}
        if not dups:
            return names
        extra = [e + (n in dups) for e, n in zip(extra, names, strict=True)]
    return [n if names.index(n) == i else f"{n} ({names[:i].count(n) + 1})" for i, n in enumerate(names)]


def _round(name: str, t: float) -> int | float:
    """A readable threshold: whole counts and days (exact for whole-number data), whole percent of churn risk,
    else 2 significant figures."""
    if name in _INTEGER:
        return int(math.floor(t))
    if name == "churn_risk" or t == 0:
        return int(round(t))
    r = round(t, 1 - int(math.floor(math.log10(abs(t)))))
    return int(r) if r == int(r) else r


def _conditions(name: str, lo: float, hi: float, missing: bool, has_nan: bool) -> list[dict]:
    """The conditions of ``lo < x <= hi``, or x not set when ``missing`` (``lo`` is inf on the missing side of a
    tree's missing-vs-set split)."""
    miss = {"field": "subscription_status" if name in _FLAGS else name, "op": "is_not_set"}
    if lo == np.inf:
        return [miss]
    if name == "active_subscriber":
        conds = [] if lo == -np.inf and hi == np.inf else [{"field": name, "op": "eq", "value": lo > -np.inf}]
    elif name in _FLAGS:
        conds = [] if lo == -np.inf and hi == np.inf else \
            [{"field": "subscription_status", "op": "eq" if lo > -np.inf else "ne", "value": _FLAGS[name]}]
    else:
        conds = ([{"field": name, "op": "gt", "value": _round(name, lo)}] if lo > -np.inf else []) + \
                ([{"field": name, "op": "lte", "value": _round(name, hi)}] if hi < np.inf else [])
    if not has_nan:
        return conds
    if not conds:
        return [] if missing else [{**miss, "op": "is_set"}]
    return [{"any": [conds[0] if len(conds) == 1 else {"all": conds}, miss]}] if missing else conds


def _f1(m: np.ndarray, y: np.ndarray) -> float:
    tp = int((m & y).sum())
    return 2 * tp / (int(m.sum()) + int(y.sum())) if tp else 0.0


def _rule(data: _Data, y: np.ndarray, seed: int) -> dict:
    """The leaf, or union of leaves, of a depth-3 cluster-vs-rest tree with the best F1, as a rule: each leaf's
    path with its thresholds rounded, conditions that do not help dropped, leaves added while F1 improves."""
    names = [*data.num, *(f for f, s in _FLAGS.items() if (data.status == s).any())]
    X = np.column_stack([data.rule_values(n) for n in names])
    has_nan = dict(zip(names, np.isnan(X).any(axis=0).tolist(), strict=True))
    tree = DecisionTreeClassifier(max_depth=3, min_samples_leaf=max(10, len(y) // 200), class_weight="balanced",
                                  random_state=seed).fit(X, y).tree_
    leaves: list[list[dict]] = []

    def walk(node: int, bounds: dict[str, tuple[float, float, bool]]) -> None:
        if tree.children_left[node] < 0:
            leaves.append([c for n, b in bounds.items() for c in _conditions(n, *b, has_nan[n])])
            return
        name, t, left = names[tree.feature[node]], float(tree.threshold[node]), bool(tree.missing_go_to_left[node])
        lo, hi, miss = bounds.get(name, (-np.inf, np.inf, True))
        walk(tree.children_left[node], {**bounds, name: (lo, min(hi, t), miss and left)})
        walk(tree.children_right[node], {**bounds, name: (max(lo, t), hi, miss and not left)})

    walk(0, {})
    candidates = []
    for atoms in leaves:
        best = _f1(data.mask({"all": atoms}), y)
        for i in reversed(range(len(atoms))):  # drop a condition, or its "or not set", when F1 does not fall
            inner = atoms[i]["any"][0] if "any" in atoms[i] else None
            for trial in [atoms[:i] + atoms[i + 1:]] + ([] if inner is None else [
                    atoms[:i] + inner.get("all", [inner]) + atoms[i + 1:]]):
                if (f := _f1(data.mask({"all": trial}), y)) >= best:
                    atoms, best = trial, f
                    break
        candidates.append((atoms, data.mask({"all": atoms})))
    chosen: list[int] = []
    union, best = np.zeros(len(y), bool), 0.0
    while len(chosen) < len(candidates):
        f, neg = max((_f1(union | m, y), -i) for i, (_, m) in enumerate(candidates) if i not in chosen)
        if f <= best + 1e-12:
            break
        chosen.append(-neg)
        union, best = union | candidates[-neg][1], f
    parts = [candidates[i][0] for i in chosen] or [candidates[0][0]]
    return {"all": parts[0]} if len(parts) == 1 else {"any": [{"all": p} for p in parts]}


def discover_segments(frame: pd.DataFrame, k_range: tuple[int, int] = (3, 8), sample: int = 50_000,
                      random_state: int = 0) -> Discovery:
    """Cluster the scored customers (one row per person) into k of ``k_range`` (inclusive) groups, fitted on at
    most ``sample`` random rows and applied to all; describe, name and write a rule for each group."""
    n, (lo_k, hi_k) = len(frame), k_range
    if n < MIN_PERSONS:
        raise ValueError(f"segment discovery needs at least {MIN_PERSONS} persons to cluster, got {n}")
    if not 2 <= lo_k <= hi_k or sample < MIN_PERSONS:
        raise ValueError(f"k_range must be (low, high) with 2 <= low <= high (got {k_range}) and sample at least "
                         f"{MIN_PERSONS} (got {sample})")
    rows = np.sort(np.random.default_rng(random_state).choice(n, sample, replace=False)) if n > sample \
        else np.arange(n)
    data = _Data(frame)
    values, kinds = _features(data)
    params = _standardise(values, kinds, rows)
    if not params:
        raise ValueError("segment discovery found no usable column: every behaviour and value column is missing "
                         "or the same for everyone")
    X = np.column_stack(list(params.values()))
    fit, scores, models = X[rows], {}, {}
    for k in range(lo_k, min(hi_k, len(rows) - 1) + 1):
        with warnings.catch_warnings():  # too few distinct persons for k clusters: k is skipped below
            warnings.simplefilter("ignore")
            km = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit(fit)
        if len(np.unique(km.labels_)) == k:
            scores[k] = float(silhouette_score(fit, km.labels_, sample_size=min(SILHOUETTE_SAMPLE, len(fit)),
                                               random_state=random_state))
            models[k] = km
    if not scores:
        raise ValueError("segment discovery could not split the persons into groups: they are too alike")
    k = max(scores, key=lambda c: (scores[c], -c))
    raw = models[k].predict(X)
    labels = np.argsort(np.argsort(-np.bincount(raw, minlength=k), kind="stable"))[raw]  # largest first
    sizes = np.bincount(labels, minlength=k)
    traits = _traits(values, params, labels, k)
    names = _names(traits, [_noun(values, labels == c) for c in range(k)])

    def avg(col: str) -> list[float | None]:
        means = _group_means(data.num[col], labels, k)[0] if col in data.num else np.full(k, np.nan)
        return [None if np.isnan(m) else float(m) for m in means]

    ltv, pltv, churn = avg("lifetime_value"), avg("predicted_ltv"), avg("churn_risk")
    segments, sampled = [], _Data(frame.iloc[rows])
    for c in range(k):
        member = labels == c
        rule = _rule(sampled, member[rows], random_state)
        m = data.mask(rule)
        tp = int((m & member).sum())
        segments.append(DiscoveredSegment(names[c], int(sizes[c]), float(sizes[c] / n), ltv[c], pltv[c], churn[c],
                                          tuple(traits[c][:MAX_TRAITS]), rule,
                                          tp / int(m.sum()) if m.any() else 0.0, tp / int(sizes[c])))
    return Discovery(tuple(segments), k, scores[k], scores, n, len(rows), tuple(params), labels)
