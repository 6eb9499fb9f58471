"""Churn prediction: who stops within the next N days, trained and evaluated strictly out of time.

Two targets:

* ``"subscription"``: a person with a subscription active at the cutoff cancels it within ``[cutoff, cutoff + N)``.
* ``"purchase"``: a person who has ordered before the cutoff places no order within ``[cutoff, cutoff + N)``.

Labels only ever come from the window after a cutoff and features (:mod:`core.cdp.churn_features`) only from before
it, so every split is a time split. To score at ``cutoff`` the model is fitted on features frozen at ``cutoff - N``
with the labels of ``[cutoff - N, cutoff)``, the most recent fully observed window. Its card reports an out-of-time
evaluation made the same way one window earlier: fitted at ``cutoff - 2N``, tested at ``cutoff - N`` against the
two baselines a churn model has to beat, "days since the last order" (a monotone score, mapped to probabilities by
isotonic regression) and a logistic regression on recency, frequency and monetary value.

The model is a gradient-boosted tree ensemble (scikit-learn ``HistGradientBoostingClassifier``) calibrated by
cross-validation within the training snapshot, isotonic with enough rows and both classes well represented,
sigmoid (Platt) otherwise, since isotonic regression overfits small samples.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from core.cdp.churn_features import FEATURES, active_subscriptions, as_utc, churn_features

__all__ = [
    "TARGETS", "MIN_PERSONS", "MIN_POSITIVES", "CalibrationBin", "Metrics", "ModelCard", "ChurnModel",
    "data_end", "churn_population", "churn_labels", "evaluate_scores", "train_churn_model",
]

TARGETS: tuple[str, ...] = ("subscription", "purchase")
MIN_PERSONS = 200
MIN_POSITIVES = 20
BASELINES: tuple[str, ...] = ("days_since_last_order", "rfm_logistic")
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class CalibrationBin:
    """One reliability bin: persons ranked by predicted probability, cut into equal-count tenths."""

    bin: int
    n: int
    lo: float
    hi: float
    predicted: float
    observed: float


@dataclass(frozen=True)
class Metrics:
    """Out-of-time quality of one scorer on one labelled snapshot."""

    n: int
    positives: int
    base_rate: float
    roc_auc: float
    pr_auc: float
    brier: float
    brier_base_rate: float  # the Brier score of always predicting the base rate: base x (1 - base)
    top_decile_lift: float  # churn rate among the top-scored 10% over the base rate
    calibration: tuple[CalibrationBin, ...] = ()


@dataclass(frozen=True)
class ModelCard:
    """What a churn model is, what it was trained on and how well it did out of time."""

    target: str
    horizon_days: int
    features: tuple[str, ...]
    training_cutoff: str
    label_window: tuple[str, str]
    scoring_cutoff: str
    trained_at: str
    n_train: int
    positives_train: int
    base_rate_train: float
    calibration_method: str
    evaluation_cutoff: str
    evaluation: dict[str, Metrics] = field(default_factory=dict)  # "model" and each baseline

    def to_json(self) -> str:
        """The card as JSON text (undefined metrics, e.g. an AUC without positives, as null)."""
        return json.dumps(_finite(asdict(self)), indent=2)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


Scorer = Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray]]  # features -> (probabilities, ranking score)


@dataclass
class ChurnModel:
    """A fitted churn model with its card and the two baselines fitted on the same snapshot."""

    card: ModelCard
    estimator: Any = field(repr=False)
    baselines: dict[str, Scorer] = field(repr=False, default_factory=dict)
    unseen: tuple[int, ...] = ()  # features never observed in training (all missing): read as 0 throughout

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Churn probability for each row of ``features`` (:func:`churn_features` output)."""
        x = _matrix(features, self.unseen)
        return pd.Series(self.estimator.predict_proba(x)[:, 1], index=features.index, name="churn_probability")

    def score(self, events: pd.DataFrame, cutoff: pd.Timestamp | str | None = None) -> pd.DataFrame:
        """Churn probabilities of the target population at ``cutoff`` (default: the model's scoring cutoff)."""
        cutoff = as_utc(cutoff if cutoff is not None else self.card.scoring_cutoff)
        persons = churn_population(events, cutoff, self.card.target)
        return self.predict(churn_features(events, cutoff, persons=persons)).to_frame()

    def evaluate(self, features: pd.DataFrame, labels: pd.Series) -> dict[str, Metrics]:
        """Metrics of the model and of both baselines on labelled ``features`` (e.g. an outcome learnt later)."""
        y = labels.reindex(features.index)
        if y.isna().any():
            raise ValueError(f"{int(y.isna().sum())} of the {len(y)} persons to evaluate have no label")
        y = y.astype(int).to_numpy()
        out = {"model": evaluate_scores(y, self.predict(features).to_numpy())}
        for name, scorer in self.baselines.items():
            prob, rank = scorer(features)
            out[name] = evaluate_scores(y, prob, rank)
        return out

    def to_json(self) -> str:
        """The model card as JSON text."""
        return self.card.to_json()


# ----------------------------------------------------------------------------------------------------------------
def data_end(events: pd.DataFrame) -> pd.Timestamp:
    """The first midnight (UTC) after the newest event: the natural scoring cutoff of a data set."""
    return as_utc(events["time"].max()).normalize() + _DAY


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown churn target {target!r}; expected one of {', '.join(TARGETS)}")


def churn_population(events: pd.DataFrame, cutoff: pd.Timestamp | str, target: str) -> pd.Index:
    """Who can churn at ``cutoff``: active subscribers (subscription target) or people who have ordered (purchase
    target), judged from the events before the cutoff only."""
    _check_target(target)
    cutoff = as_utc(cutoff)
    if target == "subscription":
        ids = active_subscriptions(events, cutoff)["person_id"].unique()
    else:
        before = events[(events["type"] == "order") & (events["time"] < cutoff) & events["person_id"].notna()]
        ids = before["person_id"].unique()
    return pd.Index(np.sort(np.asarray(ids, dtype=object)), name="person_id")


def churn_labels(events: pd.DataFrame, cutoff: pd.Timestamp | str, target: str, horizon_days: int = 90) -> pd.Series:
    """1 for each person of the population at ``cutoff`` who churns within ``[cutoff, cutoff + horizon)``, else 0.
    The window must be fully observed: it may not end after :func:`data_end`."""
    _check_target(target)
    cutoff = as_utc(cutoff)
    stop = cutoff + horizon_days * _DAY
    if stop > data_end(events):
        raise ValueError(f"the label window {cutoff.date()}..{stop.date()} ends after the data "
                         f"({data_end(events).date()})")
    pop = churn_population(events, cutoff, target)
    win = events[(events["time"] >= cutoff) & (events["time"] < stop) & events["person_id"].notna()]
    if target == "purchase":
        bought = set(win.loc[win["type"] == "order", "person_id"])
        y = ~pop.isin(bought)
    else:
        active = active_subscriptions(events, cutoff)
        cancels = win[win["type"] == "subscription_cancelled"]
        sub_ids = {str(json.loads(p).get("subscription_id")) for p in cancels["properties"]}
        churned = set(active.loc[active["subscription_id"].isin(sub_ids), "person_id"])
        y = pop.isin(churned)
    return pd.Series(np.asarray(y, dtype=int), index=pop, name="churned")


# ----------------------------------------------------------------------------------------------------------------
def _reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[CalibrationBin, ...]:
    order = np.argsort(p, kind="stable")
    out = []
    for b, part in enumerate(np.array_split(order, bins)):
        if len(part):
            out.append(CalibrationBin(bin=b + 1, n=int(len(part)), lo=float(p[part].min()), hi=float(p[part].max()),
                                      predicted=float(p[part].mean()), observed=float(y[part].mean())))
    return tuple(out)


def evaluate_scores(y: np.ndarray, prob: np.ndarray, rank: np.ndarray | None = None) -> Metrics:
    """ROC-AUC, PR-AUC and top-decile lift of ``rank`` (default ``prob``; higher = more likely to churn), Brier score
    and reliability table of the probabilities ``prob``, against the 0/1 outcomes ``y``."""
    y = np.asarray(y, dtype=int)
    prob = np.asarray(prob, dtype=float)
    rank = prob if rank is None else np.asarray(rank, dtype=float)
    base = float(y.mean()) if len(y) else float("nan")
    both = 0 < y.sum() < len(y)
    top = np.argsort(-rank, kind="stable")[: max(1, int(np.ceil(len(y) / 10)))]
    return Metrics(
        n=int(len(y)), positives=int(y.sum()), base_rate=base,
        roc_auc=float(roc_auc_score(y, rank)) if both else float("nan"),
        pr_auc=float(average_precision_score(y, rank)) if both else float("nan"),
        brier=float(brier_score_loss(y, prob)) if len(y) else float("nan"),
        brier_base_rate=base * (1 - base),
        top_decile_lift=float(y[top].mean() / base) if base > 0 else float("nan"),
        calibration=_reliability(y, prob),
    )


def _recency(feats: pd.DataFrame) -> np.ndarray:
    """Days since the last order; people who never ordered count from when they were first seen."""
    return feats["days_since_last_order"].fillna(feats["tenure_days"]).fillna(0.0).to_numpy(dtype=float)


def _rfm(feats: pd.DataFrame) -> np.ndarray:
    return np.column_stack([_recency(feats), np.log1p(feats["orders_total"].to_numpy(dtype=float)),
                            np.log1p(feats["revenue_total"].clip(lower=0).to_numpy(dtype=float))])


def _fit_baselines(feats: pd.DataFrame, y: np.ndarray) -> dict[str, Scorer]:
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(_recency(feats), y)
    logit = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(_rfm(feats), y)

    def recency(f: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        r = _recency(f)
        return iso.predict(r), r

    def rfm(f: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        p = logit.predict_proba(_rfm(f))[:, 1]
        return p, p

    return dict(zip(BASELINES, (recency, rfm), strict=True))


def _matrix(feats: pd.DataFrame, unseen: tuple[int, ...]) -> np.ndarray:
    x = feats[list(FEATURES)].to_numpy(dtype=float)
    if unseen:
        x[:, list(unseen)] = 0.0
    return x


def _unseen(feats: pd.DataFrame) -> tuple[int, ...]:
    """Columns with no value at all (e.g. billing features of a brand without subscriptions): gradient boosting
    cannot bin a feature without a single value."""
    x = feats[list(FEATURES)].to_numpy(dtype=float)
    return tuple(int(i) for i in np.flatnonzero(np.isnan(x).all(axis=0)))


def _fit_model(feats: pd.DataFrame, y: np.ndarray, random_state: int) -> tuple[CalibratedClassifierCV, str]:
    n, pos = len(y), int(y.sum())
    minority = min(pos, n - pos)
    method = "isotonic" if n >= 1000 and minority >= 100 else "sigmoid"
    folds = int(np.clip(minority // 10, 2, 5))
    trees = HistGradientBoostingClassifier(learning_rate=0.05, max_iter=150, max_leaf_nodes=15, min_samples_leaf=20,
                                           l2_regularization=1.0, random_state=random_state)
    model = CalibratedClassifierCV(trees, method=method,
                                   cv=StratifiedKFold(folds, shuffle=True, random_state=random_state))
    return model.fit(_matrix(feats, _unseen(feats)), y), method


def _snapshot(events: pd.DataFrame, cutoff: pd.Timestamp, target: str, horizon_days: int,
              role: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Features at ``cutoff`` and labels from the window after it, with enough persons and positives."""
    y = churn_labels(events, cutoff, target, horizon_days)
    what = f"{target} churn ({role}, cutoff {cutoff.date()}, window {horizon_days} days)"
    if len(y) < MIN_PERSONS:
        raise ValueError(f"too little history for {what}: {len(y)} persons in the population, "
                         f"at least {MIN_PERSONS} needed")
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if min(pos, neg) < MIN_POSITIVES:
        raise ValueError(f"too little history for {what}: {pos} churned and {neg} stayed, "
                         f"at least {MIN_POSITIVES} of each needed")
    return churn_features(events, cutoff, persons=y.index), y.to_numpy()


def train_churn_model(events: pd.DataFrame, target: str, cutoff: pd.Timestamp | str | None = None,
                      horizon_days: int = 90, random_state: int = 0) -> ChurnModel:
    """Fit a churn model that scores at ``cutoff`` (default :func:`data_end`) and evaluate it one window earlier.

    ``events`` are person events (a ``person_id`` column). Raises ``ValueError`` naming what is missing when there
    is too little history: under two horizons of data, or fewer than :data:`MIN_PERSONS` persons or
    :data:`MIN_POSITIVES` churners (or stayers) at a training or evaluation cutoff."""
    _check_target(target)
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be positive (got {horizon_days})")
    ev = events[events["person_id"].notna()]
    if ev.empty:
        raise ValueError("too little history: no person events")
    cutoff = as_utc(cutoff) if cutoff is not None else data_end(ev)
    span = (cutoff - as_utc(ev["time"].min()).normalize()) / _DAY
    if span < 2 * horizon_days:
        raise ValueError(f"too little history: {span:.0f} days of data before {cutoff.date()}, {target} churn "
                         f"needs at least {2 * horizon_days} (two {horizon_days}-day horizons)")
    fit_at, eval_fit_at = cutoff - horizon_days * _DAY, cutoff - 2 * horizon_days * _DAY

    # the most recent fully observed window trains the model and tests the one fitted a window earlier
    x_new, y_new = _snapshot(ev, fit_at, target, horizon_days, "training")
    x_old, y_old = _snapshot(ev, eval_fit_at, target, horizon_days, "out-of-time evaluation fit")
    with threadpool_limits(limits=1):  # small fits: one thread is as fast and does not stall on a busy machine
        earlier = _fit(x_old, y_old, target, horizon_days, eval_fit_at, fit_at, random_state)
        evaluation = earlier.evaluate(x_new, pd.Series(y_new, index=x_new.index))
        model = _fit(x_new, y_new, target, horizon_days, fit_at, cutoff, random_state)
    model.card = replace(model.card, evaluation_cutoff=fit_at.isoformat(), evaluation=evaluation)
    return model


def _fit(x: pd.DataFrame, y: np.ndarray, target: str, horizon: int, fit_at: pd.Timestamp, scoring: pd.Timestamp,
         random_state: int) -> ChurnModel:
    """The calibrated model and both baselines fitted on one snapshot."""
    estimator, method = _fit_model(x, y, random_state)
    card = ModelCard(
        target=target, horizon_days=int(horizon), features=FEATURES, training_cutoff=fit_at.isoformat(),
        label_window=(fit_at.isoformat(), (fit_at + horizon * _DAY).isoformat()), scoring_cutoff=scoring.isoformat(),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"), n_train=int(len(y)), positives_train=int(y.sum()),
        base_rate_train=float(y.mean()), calibration_method=method, evaluation_cutoff="",
    )
    return ChurnModel(card=card, estimator=estimator, baselines=_fit_baselines(x, y), unseen=_unseen(x))
