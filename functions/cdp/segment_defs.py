"""Saved segment definitions of a workspace: the system segments (rules in :mod:`core.cdp.system_segments`) and the
ones users save, in one JSON document changed only through :meth:`functions.storage.Store.update_json` (a
conditional read-modify-write), so two editors never lose each other's change.

A stored document holds the user segments and any edited system rule; the system segments themselves are not
copied into it, so a workspace that never edited them follows the shipped definitions. Every rule is validated
against the field catalogue, and segment references are checked for cycles, inside the update: an invalid rule
changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from core.cdp.segments import referenced_segments
from core.cdp.system_segments import SYSTEM_SEGMENTS
from functions.cdp.common import cdp_key
from functions.storage import KeyNotFound, Store

__all__ = ["SegmentDef", "list_definitions", "get_definition", "create_definition", "update_definition",
           "delete_definition", "SegmentConflict", "MAX_SEGMENTS", "rule_hash", "refs"]

MAX_SEGMENTS = 200
MAX_NAME = 120
MAX_DESCRIPTION = 1000
SYSTEM_IDS = frozenset(s["id"] for s in SYSTEM_SEGMENTS)


class SegmentConflict(Exception):
    """The change conflicts with what is stored (a duplicate name, a system segment, too many segments)."""


@dataclass(frozen=True)
class SegmentDef:
    """One saved segment: who it is (id, name, description), its rule, and whether it ships with the product."""

    id: str
    name: str
    description: str
    rules: dict[str, Any]
    system: bool
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def rule_hash(self) -> str:
        """A short hash of the rule (recomputation and caches key on it)."""
        return rule_hash(self.rules)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def rule_hash(rules: Any) -> str:
    """Hash of a rule's canonical JSON."""
    return hashlib.sha1(json.dumps(rules, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def refs(rules: Any) -> set[str]:
    """Ids of the segments a rule refers to (an unparsable rule refers to none)."""
    try:
        return set(referenced_segments(rules))
    except ValueError:
        return set()


def _key(ws: str) -> str:
    return cdp_key(ws, "segments", "definitions.json")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _from_doc(doc: dict[str, Any] | None) -> dict[str, SegmentDef]:
    stored = (doc or {}).get("segments", {})
    out: dict[str, SegmentDef] = {}
    for s in SYSTEM_SEGMENTS:
        edit = stored.get(s["id"]) or {}
        out[s["id"]] = SegmentDef(id=s["id"], name=s["name"], description=edit.get("description", s["description"]),
                                  rules=edit.get("rules", s["rules"]), system=True,
                                  updated_at=edit.get("updated_at"))
    for sid, d in stored.items():
        if sid not in SYSTEM_IDS:
            out[sid] = SegmentDef(id=sid, name=d["name"], description=d.get("description", ""), rules=d["rules"],
                                  system=False, created_at=d.get("created_at"), updated_at=d.get("updated_at"))
    return out


def list_definitions(store: Store, ws: str) -> dict[str, SegmentDef]:
    """Every segment of the workspace by id: system segments first, then user segments by creation."""
    try:
        doc = store.read_json(_key(ws))
    except KeyNotFound:
        doc = None
    return _from_doc(doc)


def get_definition(store: Store, ws: str, segment_id: str) -> SegmentDef:
    """One segment (``KeyError`` when there is none with that id)."""
    defs = list_definitions(store, ws)
    if segment_id not in defs:
        raise KeyError(segment_id)
    return defs[segment_id]


def _slug(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "segment"
    return f"{base}-{secrets.token_hex(3)}"


def _check_text(name: Any, description: Any) -> tuple[str, str]:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name: a segment needs a name")
    if len(name) > MAX_NAME:
        raise ValueError(f"name: at most {MAX_NAME} characters (got {len(name)})")
    description = "" if description is None else description
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise ValueError(f"description: text of at most {MAX_DESCRIPTION} characters")
    return name.strip(), description.strip()


Validator = Callable[[dict[str, Any], Callable[[str], Any]], Any]


def _lookup(defs: dict[str, SegmentDef]) -> Callable[[str], Any]:
    return lambda sid: defs[sid].rules if sid in defs else None


def _update(store: Store, ws: str, change: Callable[[dict[str, SegmentDef], dict[str, Any]], SegmentDef | None]
            ) -> SegmentDef | None:
    result: list[SegmentDef | None] = []

    def fn(doc: dict[str, Any] | None) -> dict[str, Any]:
        doc = {"segments": dict((doc or {}).get("segments", {}))}
        result.clear()
        result.append(change(_from_doc(doc), doc["segments"]))
        return doc

    store.update_json(_key(ws), fn)
    return result[0]


def _stored(d: SegmentDef) -> dict[str, Any]:
    out = {"rules": d.rules, "description": d.description, "updated_at": d.updated_at}
    if not d.system:
        out.update(name=d.name, created_at=d.created_at)
    return out


def _check_name(defs: dict[str, SegmentDef], name: str, own_id: str | None) -> None:
    for d in defs.values():
        if d.id != own_id and d.name.casefold() == name.casefold():
            raise SegmentConflict(f"a segment named {d.name!r} already exists ({d.id})")


def create_definition(store: Store, ws: str, name: Any, description: Any, rules: Any,
                      validate: Validator) -> SegmentDef:
    """Save a new user segment; ``validate(rules, lookup)`` raises ``ValueError`` (naming the rule path) for an
    invalid rule, and nothing is stored."""
    name, description = _check_text(name, description)

    def change(defs: dict[str, SegmentDef], stored: dict[str, Any]) -> SegmentDef:
        if sum(not d.system for d in defs.values()) >= MAX_SEGMENTS:
            raise SegmentConflict(f"a workspace holds at most {MAX_SEGMENTS} segments: delete one first")
        _check_name(defs, name, None)
        new = SegmentDef(id=_slug(name), name=name, description=description, rules=rules, system=False,
                         created_at=_now(), updated_at=_now())
        validate(rules, _lookup({**defs, new.id: new}))
        stored[new.id] = _stored(new)
        return new

    out = _update(store, ws, change)
    assert out is not None
    return out


def update_definition(store: Store, ws: str, segment_id: str, validate: Validator, name: Any = None,
                      description: Any = None, rules: Any = None) -> SegmentDef:
    """Change a segment's name, description or rule (a system segment keeps its name); ``KeyError`` if absent."""

    def change(defs: dict[str, SegmentDef], stored: dict[str, Any]) -> SegmentDef:
        if segment_id not in defs:
            raise KeyError(segment_id)
        cur = defs[segment_id]
        if cur.system and name is not None and name != cur.name:
            raise SegmentConflict(f"{cur.name!r} is a system segment: its name cannot change")
        new_name, new_desc = _check_text(cur.name if name is None else name,
                                         cur.description if description is None else description)
        _check_name(defs, new_name, segment_id)
        new = SegmentDef(id=cur.id, name=new_name, description=new_desc,
                         rules=cur.rules if rules is None else rules, system=cur.system,
                         created_at=cur.created_at, updated_at=_now())
        validate(new.rules, _lookup({**defs, new.id: new}))
        stored[new.id] = _stored(new)
        return new

    out = _update(store, ws, change)
    assert out is not None
    return out


def delete_definition(store: Store, ws: str, segment_id: str) -> None:
    """Delete a user segment (``KeyError`` if absent; :class:`SegmentConflict` for a system segment or one that
    another segment refers to)."""

    def change(defs: dict[str, SegmentDef], stored: dict[str, Any]) -> None:
        if segment_id not in defs:
            raise KeyError(segment_id)
        if defs[segment_id].system:
            raise SegmentConflict(f"{defs[segment_id].name!r} is a system segment and cannot be deleted")
        users = [d.name for d in defs.values() if d.id != segment_id and segment_id in refs(d.rules)]
        if users:
            raise SegmentConflict(f"segment {segment_id!r} is used by {', '.join(sorted(users))}: change them first")
        stored.pop(segment_id, None)
        return None

    _update(store, ws, change)
