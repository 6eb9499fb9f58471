"""The stored behaviour tables follow the person-event partitions through every refresh: written beside each
partition by the full refresh, rewritten only for the touched partitions by an incremental one (and then equal to
a full rebuild), tokens that change only where the activity changed, and a store from before activity healed by
the next refresh."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from core.cdp.activity import Activity, build_activity
from core.cdp.events import empty_events
from core.demo.glowbeauty import FILES, write_glowbeauty
from functions import cdp_store
from functions.cdp import rebuild
from functions.cdp.activity_store import TABLES, activity_key, activity_tokens, read_activity, stored_parts
from functions.cdp.common import person_part, read_state
from functions.storage import LocalStore

WS = "default"
END = date(2025, 3, 31)


def _canon(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype(str)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def _same(a: Activity, b: Activity) -> None:
    for name, _ in TABLES:
        assert _canon(getattr(a, name)).equals(_canon(getattr(b, name))), name


def _person_events(store: LocalStore) -> pd.DataFrame:
    return pd.concat([store.read_table(k) for k in store.list(f"workspaces/{WS}/cdp/person_events/")],
                     ignore_index=True)


def _parts_with_events(store: LocalStore) -> set[int]:
    return {int(k.rsplit("part-", 1)[1][:3]) for k in store.list(f"workspaces/{WS}/cdp/person_events/")}


def _copy(store: LocalStore, to: Path) -> LocalStore:
    shutil.copytree(store.root, to)
    return LocalStore(to)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return write_glowbeauty(tmp_path_factory.mktemp("gb") / "gb", seed=31, customers=100, end=END)


@pytest.fixture(scope="module")
def synced(demo, tmp_path_factory) -> LocalStore:
    from functions.cli.sync import find_exports

    store = LocalStore(tmp_path_factory.mktemp("synced") / "store")
    for source, topic, path in find_exports(demo):
        cdp_store.ingest_file(store, WS, source, path, topic=topic)
    assert cdp_store.refresh(store, WS, None)["mode"] == "full"
    return store


def _orders(demo: Path) -> list[dict]:
    return [json.loads(line) for line in (demo / FILES["shopify"]["orders"]).read_text().splitlines()]


def _webhook(store: LocalStore, order: dict) -> dict:
    out = cdp_store.ingest_batch(store, WS, "shopify", json.dumps(order).encode(), None, topic="orders/create",
                                 mode="webhook")
    return out["refresh"]


def test_every_person_partition_has_its_activity(synced):
    state = read_state(synced, WS)
    parts = _parts_with_events(synced)
    assert len(parts) > 50
    assert stored_parts(synced, WS) == parts == set(activity_tokens(state))
    ev = _person_events(synced)
    want = build_activity(ev, pd.Timestamp(state["as_of"]))
    got = read_activity(synced, WS)
    _same(got, want)
    assert len(got.daily) > 1000 and len(got.props) > 1000 and len(got.windows) > 300
    assert set(got.props["prop"]) == {"product", "campaign"}
    # each partition holds exactly its persons
    p = sorted(parts)[0]
    one = read_activity(synced, WS, parts=[p])
    assert set(person_part(one.windows["person_id"])) == {p}
    _same(one, want.select(set(ev.loc[person_part(ev["person_id"]) == p, "person_id"])))


def test_a_full_refresh_keeps_tokens_of_unchanged_partitions_and_deletes_stale_ones(synced, tmp_path):
    store = _copy(synced, tmp_path / "s")
    before = activity_tokens(read_state(store, WS))
    stale = activity_key(WS, "activity_props", max(set(range(256)) - set(before)))  # a person-less one
    store.write_table(stale, Activity.empty().props)
    cdp_store.refresh(store, WS, None, full=True)
    assert activity_tokens(read_state(store, WS)) == before  # the same content: the same tokens
    assert not store.exists(stale)


def test_incremental_refresh_rewrites_only_touched_partitions_and_equals_a_full_rebuild(demo, synced, tmp_path):
    store = _copy(synced, tmp_path / "inc")
    orders = _orders(demo)
    before = activity_tokens(read_state(store, WS))
    known = {**orders[0], "id": 990_001, "name": "#990001", "total_price": "42.00",
             "line_items": [{"id": 1, "product_id": 1, "title": "Retinol Night Cream", "quantity": 1, "price": "21"},
                            {"id": 2, "product_id": 2, "title": "Retinol Night Cream", "quantity": 2, "price": "21"},
                            {"id": 3, "product_id": 3, "title": "Brand New Balm", "quantity": 1, "price": "0"}]}
    out = _webhook(store, known)
    assert out["mode"] == "incremental" and out["recomputed"] == 1
    [pid] = out["recomputed_ids"]
    after = activity_tokens(read_state(store, WS))
    assert set(after) == set(before)
    assert {p for p in after if after[p] != before[p]} == set(person_part([pid]))  # only its partition
    act = read_activity(store, WS, parts=person_part([pid]))
    balm = act.props[(act.props["person_id"] == pid) & (act.props["value"] == "Brand New Balm")]
    assert balm["n"].tolist() == [1] and balm["event"].tolist() == ["order"]

    newcomer = json.loads(json.dumps(orders[1]))
    newcomer.update(id=990_002, name="#990002", email="zed.newcomer@example.com")
    newcomer["customer"] = {**newcomer["customer"], "id": 880_002, "email": "zed.newcomer@example.com",
                            "first_name": "Zed", "last_name": "Newcomer", "phone": None}
    assert _webhook(store, newcomer)["mode"] == "incremental"
    ref = _copy(store, tmp_path / "ref")
    cdp_store.refresh(ref, WS, None, full=True)
    _same(read_activity(store, WS), read_activity(ref, WS))
    assert activity_tokens(read_state(store, WS)) == activity_tokens(read_state(ref, WS))
    _same(read_activity(store, WS), build_activity(_person_events(store), pd.Timestamp(read_state(store, WS)["as_of"])))


def _strip_activity(store: LocalStore, keep_state: bool = False, parts: list[int] | None = None) -> None:
    """Make ``store`` look as if it was written before activity existed (or lost some files)."""
    for _, folder in TABLES:
        for k in store.list(f"workspaces/{WS}/cdp/{folder}/"):
            if parts is None or int(k.rsplit("part-", 1)[1][:3]) in parts:
                store.delete(k)
    if not keep_state:
        state = read_state(store, WS)
        state.pop("activity_parts")
        store.write_json(f"workspaces/{WS}/cdp/state.json", state)


def test_a_store_without_activity_heals_on_the_next_incremental_refresh(demo, synced, tmp_path):
    store = _copy(synced, tmp_path / "old")
    want = read_activity(synced, WS)
    tokens = activity_tokens(read_state(synced, WS))
    _strip_activity(store)
    assert not stored_parts(store, WS) and not activity_tokens(read_state(store, WS))
    order = {**_orders(demo)[3], "id": 990_010, "name": "#990010", "total_price": "9.00"}
    out = _webhook(store, order)
    assert out["mode"] == "incremental"
    assert stored_parts(store, WS) == _parts_with_events(store) == set(activity_tokens(read_state(store, WS)))
    _same(read_activity(store, WS), build_activity(_person_events(store), pd.Timestamp(read_state(store, WS)["as_of"])))
    [pid] = out["recomputed_ids"]
    healed = activity_tokens(read_state(store, WS))
    assert {p for p in tokens if tokens[p] != healed[p]} == set(person_part([pid]))  # healed = as built before
    untouched = sorted(set(tokens) - set(person_part([pid])))
    _same(read_activity(store, WS, untouched), want.select(set(read_activity(synced, WS, untouched).windows
                                                               ["person_id"])))


def test_lost_files_heal_even_when_nothing_new_arrives(synced, tmp_path):
    store = _copy(synced, tmp_path / "lost")
    tokens = activity_tokens(read_state(store, WS))
    lost = sorted(tokens)[:3]
    _strip_activity(store, keep_state=True, parts=lost)
    assert stored_parts(store, WS) == set(tokens) - set(lost)
    out = rebuild.refresh_incremental(store, WS, empty_events(), {})  # a fold of only duplicates
    assert out is not None and out["recomputed"] == 0
    assert stored_parts(store, WS) == set(tokens)
    assert activity_tokens(read_state(store, WS)) == tokens
    _same(read_activity(store, WS), read_activity(synced, WS))
