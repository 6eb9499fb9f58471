"""Predictions of the customer base, kept by the refresh writer: churn risk, predicted lifetime value, next order
date, health and next best action for every person, beside the profiles.

Files (``workspaces/{ws}/cdp/``), written only under the writer's lock:

- ``predictions/model.pkl`` — the :class:`core.cdp.scoring.Predictor` fitted at the base's ``as_of`` (once per
  data day: a full refresh moves ``as_of``), pickled; written by this module only, read back only from the
  workspace's own store. ``predictions/models.json`` — its model cards, served by the API.
- ``predictions.parquet`` — one row per person (:data:`PREDICTION_COLUMNS` plus ``health``, ``next_action``,
  ``next_action_reason`` and the person partition ``part``), written whole after each update (atomic), then
- ``predictions/status.json`` — ``as_of``, the model's token and, per person partition, the activity token
  (``state.json["activity_parts"]``) its rows were scored from.

The models are refitted when ``as_of`` moves, or within a day when some source holds a fifth more events than
the fit saw (a first sync, source by source). An update rescores exactly the partitions whose activity token
differs from the one they were scored from (a webhook's persons, after an incremental refresh) or every partition
when the model was refitted; a crash before
the status is written leaves the old status, so the next refresh rescores the same partitions again (scoring is
deterministic). Afterwards ``state.json`` gets the table's token and a new version, so readers (search, profiles,
the segment engine) reload and segments with prediction rules are recomputed.

The churn models are fitted on a sample of whole person partitions (at least :data:`TRAIN_PERSONS` persons, or
everyone): a model learns as much from tens of thousands of customers as from a million. The lifetime models are
fitted on every buyer's daily order totals (small: one row per order day).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.cdp.churn import TARGETS
from core.cdp.scoring import PREDICTION_COLUMNS, Predictor, fit_predictor, score_persons
from functions.cdp.activity_store import activity_key, activity_tokens
from functions.cdp.common import cdp_key, person_part, read_state, read_table
from functions.storage import KeyNotFound, Store

__all__ = ["update_predictions", "read_predictions", "read_cards", "load_predictor", "models_json", "read_discovery",
           "TRAIN_PERSONS", "EXTRA_COLUMNS"]

log = logging.getLogger(__name__)
TRAIN_PERSONS = 60_000
SCORE_BATCH_PERSONS = 40_000  # persons scored per model call (about 2M events at 50 events a person)
REFIT_GROWTH = 0.2  # refit within a data day once the base holds this much more events than the fit saw
EXTRA_COLUMNS = ("health", "next_action", "next_action_reason")
_EVENT_COLUMNS = ["person_id", "type", "time", "amount", "properties"]
_PROPS_NEEDED = ("subscription_created", "subscription_cancelled")


def _key(ws: str, *parts: str) -> str:
    return cdp_key(ws, "predictions", *parts)


def _table_key(ws: str) -> str:
    return cdp_key(ws, "predictions.parquet")


def read_predictions(store: Store, ws: str) -> pd.DataFrame | None:
    """The stored predictions table (None before the first scoring)."""
    return read_table(store, _table_key(ws))


def read_cards(store: Store, ws: str) -> dict[str, Any] | None:
    """The model cards of the stored predictor (None before the first fit)."""
    try:
        return store.read_json(_key(ws, "models.json"))
    except KeyNotFound:
        return None


def load_predictor(store: Store, ws: str) -> Predictor | None:
    """The pickled predictor of this workspace (written by :func:`update_predictions` only)."""
    try:
        return pickle.loads(store.read_bytes(_key(ws, "model.pkl")))  # noqa: S301 - our own writer's file
    except (KeyNotFound, pickle.UnpicklingError, AttributeError, ModuleNotFoundError, EOFError):
        return None


def _discovery_key(ws: str) -> str:
    return _key(ws, "discovered.json")


def _discover(store: Store, ws: str, frame: pd.DataFrame) -> None:
    """Cluster the scored base and store the discovered segments (after a refit: once per data day)."""
    from core.cdp.discovery import discover_segments

    try:
        out = discover_segments(frame).to_json()
    except ValueError as e:
        out = {"k": 0, "segments": [], "message": str(e)}
    store.write_json(_discovery_key(ws), out)


def read_discovery(store: Store, ws: str) -> dict[str, Any]:
    """The stored discovered segments (an empty list with a message before the first refit)."""
    try:
        return store.read_json(_discovery_key(ws))
    except KeyNotFound:
        return {"k": 0, "segments": [], "message": "segments are discovered at the next refresh of the data"}


def _read_events(store: Store, ws: str, parts: list[int]) -> pd.DataFrame:
    """Person events of ``parts``: only the columns the models read, properties kept for subscriptions only."""
    frames = []
    for p in parts:
        try:
            data = store.read_bytes(cdp_key(ws, "person_events", f"part-{p:03d}.parquet"))
        except KeyNotFound:
            continue
        t = pq.read_table(io.BytesIO(data), columns=_EVENT_COLUMNS).to_pandas()
        t.loc[~t["type"].isin(_PROPS_NEEDED), "properties"] = None
        frames.append(t)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _EVENT_COLUMNS})
    ev = pd.concat(frames, ignore_index=True)
    ev["time"] = pd.to_datetime(ev["time"], utc=True)
    ev["amount"] = pd.to_numeric(ev["amount"], errors="coerce")
    return ev


def _transactions(store: Store, ws: str, parts: list[int]) -> pd.DataFrame:
    """Daily order totals ``person_id, day, amount`` of ``parts`` from the behaviour tables (refunded, voided
    and cancelled orders add no revenue there and are left out)."""
    frames = []
    for p in parts:
        try:
            data = store.read_bytes(activity_key(ws, "activity", p))
        except KeyNotFound:
            continue
        t = pq.read_table(io.BytesIO(data), columns=["person_id", "event", "day", "amount"],
                          filters=[("event", "=", "order"), ("amount", ">", 0)])
        if t.num_rows:
            frames.append(t.to_pandas())
    if not frames:
        return pd.DataFrame({"person_id": pd.Series(dtype=object), "day": pd.Series(dtype="datetime64[ns]"),
                             "amount": pd.Series(dtype=float)})
    tx = pd.concat(frames, ignore_index=True)
    tx = tx.groupby(["person_id", "day"], as_index=False, sort=False)["amount"].sum()
    tx["day"] = pd.to_datetime(tx["day"])
    return tx


def _sample_parts(state: dict[str, Any], parts: list[int]) -> list[int]:
    """Whole partitions, in a fixed order, holding about :data:`TRAIN_PERSONS` persons (everyone when fewer)."""
    persons = max(int(state.get("persons", 0)), 1)
    want = int(np.ceil(len(parts) * min(1.0, TRAIN_PERSONS / persons)))
    order = sorted(parts, key=lambda p: hashlib.md5(f"train-{p}".encode()).hexdigest())
    return sorted(order[: max(want, 1)])


def _fit(store: Store, ws: str, state: dict[str, Any], parts: list[int], as_of: pd.Timestamp) -> Predictor:
    train = _sample_parts(state, parts)
    events = _read_events(store, ws, train)
    tx = _transactions(store, ws, parts)
    pred = fit_predictor(events, tx, as_of)
    for target, model in pred.churn.items():  # the baselines are closures: kept in the card, not pickled
        pred.churn[target] = replace(model, baselines={})
    return pred


def _policy_columns(scored: pd.DataFrame, profiles: pd.DataFrame, context: Any) -> pd.DataFrame:
    """Health band and next best action of the scored persons (needs their profile columns)."""
    from core.cdp.health import HealthThresholds, health_band
    from core.cdp.next_action import next_best_action

    frame = scored.merge(profiles, on="person_id", how="left", suffixes=("", "_profile"))
    frame.index = scored.index
    scored = scored.copy()
    scored["health"] = health_band(frame, HealthThresholds())
    nba = next_best_action(frame, context)
    scored["next_action"] = nba["next_action"].to_numpy()
    scored["next_action_reason"] = nba["next_action_reason"].to_numpy()
    return scored


def _context(table: pd.DataFrame, profiles: pd.DataFrame) -> Any:
    from core.cdp.health import HealthThresholds
    from core.cdp.next_action import policy_context

    frame = table.merge(profiles, on="person_id", how="left", suffixes=("", "_profile"))
    return policy_context(frame, HealthThresholds())


def update_predictions(store: Store, ws: str, force_fit: bool = False) -> dict[str, Any]:
    """Bring the predictions up to the published base (see the module docstring); called by the refresh writer
    under its lock. Returns what it did (mode, partitions scored, timings, model messages)."""
    t0 = time.perf_counter()
    state = read_state(store, ws)
    if state is None or not state.get("as_of"):
        return {"mode": "none", "reason": "no customer base yet"}
    tokens = activity_tokens(state)
    parts = sorted(tokens)
    as_of = pd.Timestamp(state["as_of"])
    try:
        status = store.read_json(_key(ws, "status.json"))
    except KeyNotFound:
        status = {}
    scored_from = {int(p): str(t) for p, t in (status.get("tokens") or {}).items()}
    if not force_fit and status.get("as_of") == as_of.isoformat() and scored_from == tokens:
        return {"mode": "none", "scored_parts": 0}  # nothing changed: no file read beyond the status
    pred = load_predictor(store, ws)
    table = read_predictions(store, ws)
    refit = force_fit or pred is None or pred.as_of != as_of.isoformat() or table is None or _grown(status, state)
    timings: dict[str, float] = {}
    if refit:
        pred = _fit(store, ws, state, parts, as_of)
        blob = pickle.dumps(pred)
        store.write_bytes(_key(ws, "model.pkl"), blob)
        store.write_json(_key(ws, "models.json"), pred.cards())
        model_token = hashlib.sha1(blob).hexdigest()[:12]
        timings["fit"] = time.perf_counter() - t0
    else:
        model_token = str(status.get("model", ""))
    if refit or status.get("model") != model_token:
        todo = parts
    else:
        todo = [p for p in parts if scored_from.get(p) != tokens[p]]
    gone = set(scored_from) - set(parts)
    if not todo and not gone and table is not None:
        return {"mode": "none", "scored_parts": 0, "messages": pred.messages}
    t1 = time.perf_counter()
    fresh = [_score_parts(store, ws, pred, group) for group in _batches(state, todo)]
    timings["score"] = time.perf_counter() - t1
    keep = table[~table["part"].isin(set(todo) | gone)] if table is not None and not refit else None
    new = pd.concat([f for f in fresh if len(f)] or [_empty_table()], ignore_index=True)
    profiles = read_table(store, cdp_key(ws, "profiles.parquet"))
    if profiles is None:
        return {"mode": "none", "reason": "no profiles"}
    if refit or keep is None or "policy" not in status:
        base = pd.concat([x for x in (keep, new) if x is not None], ignore_index=True)
        context = _context(base, profiles)
        store.write_json(_key(ws, "policy.json"), context.to_json())
    else:
        from core.cdp.next_action import PolicyContext

        context = PolicyContext.from_json(store.read_json(_key(ws, "policy.json")))
    new = _policy_columns(new, profiles, context)
    out = pd.concat([x for x in (keep, new) if x is not None and len(x)] or [new], ignore_index=True)
    known = pc.is_in(pa.array(out["person_id"].to_numpy(dtype=object)),  # 20x pandas' isin on 1M str ids
                     value_set=pa.array(profiles["person_id"].to_numpy(dtype=object))).to_numpy(zero_copy_only=False)
    out = out[known].sort_values("person_id", kind="stable")
    store.write_table(_table_key(ws), out.reset_index(drop=True))
    if refit or not store.exists(_discovery_key(ws)):
        t2 = time.perf_counter()
        _discover(store, ws, out.drop(columns=["part"]).merge(profiles, on="person_id", how="left",
                                                              suffixes=("", "_profile")))
        timings["discover"] = time.perf_counter() - t2
    table_token = hashlib.sha1(f"{model_token}|{sorted(tokens.items())}|{len(out)}".encode()).hexdigest()[:12]
    fitted = {"sources": dict(state.get("sources") or {})} if refit else status.get("fitted_on", {})
    store.write_json(_key(ws, "status.json"), {"as_of": as_of.isoformat(), "model": model_token,
                                                "policy": True, "table": table_token, "fitted_on": fitted,
                                                "tokens": {str(p): tokens[p] for p in parts}})
    _publish(store, ws, table_token)
    timings["total"] = time.perf_counter() - t0
    return {"mode": "full" if refit else "incremental", "scored_parts": len(todo), "persons": int(len(out)),
            "messages": pred.messages, "timings": {k: round(v, 3) for k, v in timings.items()}}


def _grown(status: dict[str, Any], state: dict[str, Any]) -> bool:
    """Whether the base changed enough since the models were fitted to fit them again within the same day: some
    source (e.g. subscription charges synced after orders) holds :data:`REFIT_GROWTH` more events than then."""
    fitted = (status.get("fitted_on") or {}).get("sources")
    if not isinstance(fitted, dict):
        return True
    return any(int(n) > (1 + REFIT_GROWTH) * int(fitted.get(src, 0)) for src, n in (state.get("sources") or {}).items())


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (*PREDICTION_COLUMNS, "part")})


def _batches(state: dict[str, Any], parts: list[int]) -> list[list[int]]:
    """Partitions scored together: about :data:`SCORE_BATCH_PERSONS` persons at a time (every model call has a
    fixed cost, so a small base is scored in one go and a large one in bounded memory)."""
    per_part = max(int(state.get("persons", 0)), 1) / max(len(activity_tokens(state)), 1)
    size = max(1, int(SCORE_BATCH_PERSONS // max(per_part, 1.0)))
    return [parts[i:i + size] for i in range(0, len(parts), size)]


def _score_parts(store: Store, ws: str, pred: Predictor, parts: list[int]) -> pd.DataFrame:
    ev = _read_events(store, ws, parts)
    if ev.empty:
        return _empty_table()
    # seeded by the first partition and the persons: the same batch of the same data scores the same
    scored = score_persons(pred, ev, _transactions(store, ws, parts), seed=parts[0])
    scored["part"] = person_part(scored["person_id"]).astype(np.int16)
    return scored


def _publish(store: Store, ws: str, token: str) -> None:
    """Give ``state.json`` the predictions' token and a new version, so every reader reloads."""
    state = read_state(store, ws)
    if state is None or state.get("predictions") == token:
        return
    state["predictions"] = token
    state["version"] = hashlib.sha1(f"{state['version']}|{token}".encode()).hexdigest()[:12]
    store.write_json(cdp_key(ws, "state.json"), state)


def models_json(store: Store, ws: str) -> dict[str, Any]:
    """The model cards, with a message for every target that has no model."""
    cards = read_cards(store, ws)
    if cards is None:
        raise LookupError("no predictions yet: they are computed by the next refresh of the customer data")
    cards = json.loads(json.dumps(cards))
    cards.setdefault("messages", {})
    for t in TARGETS:
        if cards.get(t) is None and t not in cards["messages"]:
            cards["messages"][t] = f"no {t} churn model"
    return cards

