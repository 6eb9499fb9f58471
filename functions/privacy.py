"""Data-subject access (GDPR art. 15, CCPA "right to know"): everything the customer store holds about a person.

:func:`export_person` gathers, for one person of a workspace:

* ``profile``: the unified profile (every trait, consent and identifier);
* ``events``: every stored event of every source, newest first, with its payload;
* ``identities``: the source records merged into the person (each with its email, phone, name, address) and the
  merges that joined them;
* ``segments``: the segments the person is in now, and ``segment_history``: every entered/exited change of every
  segment that names the person;
* ``predictions``: the person's stored scores (churn risk, predicted value, next action) when they exist.

:func:`find_person` resolves a request made by email to the person it belongs to (case and plus-alias
insensitive, by the same normalisation as identity resolution). Erasure is not built yet.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.cdp.normalize import normalize_email
from functions.cdp import membership, predictions, query
from functions.cdp.segment_defs import list_definitions
from functions.storage import Store

__all__ = ["export_person", "find_person"]


def find_person(store: Store, ws: str, email: str) -> str:
    """The person whose identities hold ``email`` (``KeyError`` when none does)."""
    want = normalize_email(email)
    if not want:
        raise ValueError(f"not an email address: {email!r}")
    profiles = query.load_profiles(store, ws)
    if "email" in profiles.columns:
        hit = profiles.index[profiles["email"].map(lambda e: normalize_email(e) if isinstance(e, str) else None)
                             == want]
        if len(hit):
            return str(hit[0])
    raise KeyError(f"no customer with the email {email!r}")


def _history(store: Store, ws: str, person_id: str) -> list[dict[str, Any]]:
    out = []
    for d in list_definitions(store, ws).values():
        for key in store.list(membership._seg_key(ws, d.id, "changes") + "/"):
            t = pq.read_table(io.BytesIO(store.read_bytes(key)))
            t = t.filter(pc.equal(t["person_id"], person_id))
            for r in t.to_pylist():
                out.append({"segment_id": d.id, "segment": d.name, "change": r["change"],
                            "at": pd.Timestamp(r["at"]).isoformat()})
    return sorted(out, key=lambda r: r["at"], reverse=True)


def export_person(store: Store, ws: str, person_id: str) -> dict[str, Any]:
    """The bundle described in the module docstring (``KeyError`` for an unknown person)."""
    detail = query.customer_detail(store, ws, person_id, limit=None)
    pred = predictions.read_predictions(store, ws)
    scores = None
    if pred is not None and "person_id" in pred.columns:
        row = pred[pred["person_id"] == person_id]
        if len(row):
            scores = {k: query._jsonable(v) for k, v in row.drop(columns=[c for c in ("part",) if c in row])
                      .iloc[0].to_dict().items()}
    return {
        "person_id": person_id, "workspace": ws, "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": detail["profile"], "events": detail["timeline"], "identities": detail["identities"],
        "merges": detail["merges"], "sources": detail["sources"],
        "segments": [{"id": d.id, "name": d.name} for d in membership.segments_of(store, ws, person_id)],
        "segment_history": _history(store, ws, person_id), "predictions": scores,
    }
