"""The import service and CLI: bad input is rejected with its message and leaves the store byte-for-byte unchanged;
the demo folder round-trips; the wide format with controls imports."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.data.importers import ImportOptions
from functions.cli.main import main
from functions.datasets import load_dataset
from functions.importing import ImportRejected, describe_dataset, gather_paths, import_files
from functions.storage import LocalStore

WS = "default"


def _long(days: int = 10) -> str:
    rows = ["date,channel,spend,impressions,clicks,conversions,revenue"]
    for i, d in enumerate(pd.date_range("2025-01-01", periods=days)):
        for j, ch in enumerate(("Google Ads", "Meta Ads")):
            rows.append(f"{d.date()},{ch},{100 + 10 * i + j},{1000 + i},{50 + i},{5 + j},{300 + 7 * i}")
    return "\n".join(rows) + "\n"


def _kpis(days: int = 10) -> str:
    return "date,revenue,orders\n" + "".join(
        f"{d.date()},{5000 + 50 * i},{60 + i}\n" for i, d in enumerate(pd.date_range("2025-01-01", periods=days)))


def _snapshot(store: LocalStore) -> dict[str, bytes]:
    return {k: store.read_bytes(k) for k in store.list("")}


@pytest.fixture
def store(tmp_path):
    s = LocalStore(tmp_path / "store")
    import_files(s, WS, [("m.csv", _long().encode()), ("k.csv", _kpis().encode())])
    return s


def _edit(text: str, line: int, new: str | None) -> str:
    lines = text.splitlines()
    if new is None:
        del lines[line]
    else:
        lines[line] = new
    return "\n".join(lines) + "\n"


CAMPAIGNS = ("campaign_id,channel,campaign_name,start_date\nC1,Google Ads,Search,2025-01-01\n"
             "C2,Radio,Morning,2025-01-02\n")

BAD = {
    "unparsable date": ([("m.csv", _edit(_long(), 3, "2025-02-30,Google Ads,1,1,1,1,1"))], "m.csv, row 4, column "
                        "'date': '2025-02-30' is not a date"),
    "negative spend": ([("m.csv", _edit(_long(), 1, "2025-01-01,Google Ads,-10,1,1,1,1"))], "row 2, column 'spend': "
                       "spend is negative (-10)"),
    "non-numeric value": ([("m.csv", _edit(_long(), 2, "2025-01-01,Meta Ads,100,lots,1,1,1"))], "row 3, column "
                          "'impressions': 'lots' is not a number"),
    "duplicate date/channel": ([("m.csv", _long() + "2025-01-10,Meta Ads,1,1,1,1,1\n")], "duplicate date/channel "
                               "(2025-01-10, Meta Ads)"),
    "duplicate kpi date": ([("m.csv", _long()), ("k.csv", _kpis() + "2025-01-10,1,1\n")], "k.csv, row 12, column "
                           "'date': duplicate date (2025-01-10)"),
    "gap in dates": ([("m.csv", _edit(_edit(_long(), 10, None), 9, None))], "gap in dates: nothing between "
                     "2025-01-04 and 2025-01-06 (1 day missing)"),
    "unknown column": ([("m.csv", _long().replace("revenue\n", "revenue,notes\n", 1))], "column 'notes': unknown "
                       "column for marketing data"),
    "missing required column": ([("m.csv", "date,channel,campaign_id\n2025-01-01,A,x\n"),
                                 ("k.csv", _kpis())], "required column is missing"),
    "empty file": ([("m.csv", "")], "m.csv: the file is empty"),
    "header only": ([("m.csv", "date,channel,spend\n")], "m.csv: the file is empty (no data rows)"),
    "unknown channel in campaigns": ([("m.csv", _long()), ("c.csv", CAMPAIGNS)], "c.csv, row 3, column 'channel': "
                                     "channel 'Radio' has no marketing data"),
    "unrecognised file": ([("m.csv", _long()), ("x.csv", "a,b\n1,2\n")], "x.csv: cannot tell what this file holds"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_rejected_and_store_unchanged(store, case):
    files, message = BAD[case]
    before = _snapshot(store)
    with pytest.raises(ImportRejected) as e:
        import_files(store, WS, [(n, t.encode()) for n, t in files])
    assert message in str(e.value), str(e.value)
    assert e.value.problems
    assert _snapshot(store) == before


def test_all_problems_listed_at_once(store):
    text = _edit(_edit(_long(), 1, "2025-01-01,Google Ads,-1,1,1,1,1"), 4, "bad-date,Meta Ads,x,1,1,1,1")
    with pytest.raises(ImportRejected) as e:
        import_files(store, WS, [("m.csv", text.encode()), ("c.csv", CAMPAIGNS.encode())])
    found = {(p.file, p.row, p.column) for p in e.value.problems}
    assert {("m.csv", 2, "spend"), ("m.csv", 5, "date"), ("m.csv", 5, "spend"), ("c.csv", 3, "channel")} <= found


def test_successful_import_replaces_dataset_with_content_version(store):
    first = load_dataset(store, WS).version
    again = import_files(store, WS, [("m.csv", _long().encode()), ("k.csv", _kpis().encode())])
    assert again["version"] == first  # same content, same version
    new = import_files(store, WS, [("m.csv", _long(12).encode()), ("k.csv", _kpis(12).encode())])
    assert new["version"] != first and new["tables"] == {"kpis": 12, "marketing": 24}
    ds = load_dataset(store, WS)
    assert ds.version == new["version"] and len(ds.table("marketing")) == 24
    assert ds.meta["source_files"] == ["k.csv", "m.csv"] and ds.meta["granularity"] == "day"
    assert ds.meta["channels"] == ["Google Ads", "Meta Ads"]


def test_dry_run_writes_nothing(store):
    before = _snapshot(store)
    r = import_files(store, WS, [("m.csv", _long(12).encode())], dry_run=True)
    assert r["version"] is None and r["tables"]["marketing"] == 24 and r["warnings"]
    assert _snapshot(store) == before


def test_wide_file_with_controls(tmp_path):
    s = LocalStore(tmp_path / "s")
    dates = pd.date_range("2024-01-01", periods=20, freq="W-MON")
    df = pd.DataFrame({"week": dates.strftime("%Y-%m-%d"), "revenue": range(20), "google_spend": 10.0,
                       "tiktok_spend": [5.0, 0.0] * 10, "price_index": 1.0})
    r = import_files(s, WS, [("wide.csv", df.to_csv(index=False).encode())],
                     ImportOptions(date_col="week", control_cols=["price_index"]))
    assert r["granularity"] == "week" and r["channels"] == ["Google Ads", "TikTok"]
    ds = load_dataset(s, WS)
    assert set(ds.tables) == {"marketing", "kpis", "controls"}
    assert list(ds.table("controls").columns) == ["date", "price_index"]
    assert ds.table("marketing")["spend"].sum() == pytest.approx(20 * 10 + 10 * 5)


def test_gather_paths_folder_notes(tmp_path):
    (tmp_path / "m.csv").write_text(_long())
    (tmp_path / "truth.json").write_text("{}")
    (tmp_path / "readme.txt").write_text("hi")
    files, notes, from_folder = gather_paths([tmp_path])
    assert [n for n, _ in files] == ["m.csv"] and from_folder
    assert any("truth.json" in n for n in notes) and any("readme.txt" in n for n in notes)
    with pytest.raises(ValueError, match="no such file"):
        gather_paths([tmp_path / "missing.csv"])


def test_cli_demo_folder_round_trip(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    out = tmp_path / "demo"
    assert main(["demo", "techstyle", "--out", str(out), "--seed", "11", "--journeys", "300"]) == 0
    truth = json.loads((out / "truth.json").read_text())
    assert truth["seed"] == 11
    assert main(["import", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "imported data version" in printed and "skipped truth.json" in printed
    store = LocalStore(tmp_path / "store")
    info = describe_dataset(store, WS)
    assert info["channels"] == sorted(truth["channels"])
    assert set(info["tables"]) == {"marketing", "kpis", "campaigns", "external_factors", "journeys"}
    assert info["start_date"] == truth["start"] and info["end_date"] == truth["end"]
    ds = load_dataset(store, WS)
    assert ds.table("kpis")["revenue"].sum() == pytest.approx(truth["kpi_total"])
    for name, ch in truth["channels"].items():
        m = ds.table("marketing")
        assert m.loc[m["channel"] == name, "spend"].sum() == pytest.approx(ch["spend_total"])


def test_cli_rejects_with_exit_2_and_lists_problems(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    bad = tmp_path / "m.csv"
    bad.write_text(_edit(_long(), 1, "2025-01-01,Google Ads,-10,1,1,1,1"))
    assert main(["import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "m.csv, row 2, column 'spend': spend is negative" in err
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("*.parquet"))
    good = tmp_path / "good.csv"
    good.write_text(_long())
    assert main(["import", str(good), "--dry-run"]) == 0
    assert "dry run" in capsys.readouterr().out
    assert not list((tmp_path / "store").rglob("*.parquet")) if (tmp_path / "store").exists() else True


def test_cli_demo_needs_a_name(capsys):
    assert main(["demo"]) == 2
    assert "techstyle" in capsys.readouterr().err
