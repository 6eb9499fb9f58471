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
insensitive) through the search index, which holds every email of every source record. Erasure is not built yet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.cdp.normalize import normalize_email
from functions.cdp import membership, predictions, query
from functions.storage import Store

__all__ = ["export_person", "find_person"]


def find_person(store: Store, ws: str, email: str) -> str:
    """The person any of whose source records holds ``email`` (case and surrounding spaces ignored, or the
    address without its plus-alias), by the search index; ``KeyError`` when none does."""
    if not normalize_email(email):
        raise ValueError(f"not an email address: {email!r}")
    for candidate in dict.fromkeys((email, normalize_email(email))):
        hits = query.exact_matches(store, ws, candidate)
        if hits:
            return hits[0]
    raise KeyError(f"no customer with the email {email!r}")


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
        "segment_history": membership.changes_of(store, ws, person_id), "predictions": scores,
    }
