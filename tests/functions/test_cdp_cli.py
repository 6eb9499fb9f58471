"""``growthlens cdp resolve``: CSV in, clusters (and explained merges) out, on any subset of identity columns."""

from __future__ import annotations

import pandas as pd
import pytest

from functions.cli.main import main

RECORDS = pd.DataFrame([
    {"record_id": "shopify:1", "source": "shopify", "source_customer_id": "1", "email": "Ana.Lima@Gmail.com",
     "phone": "(212) 555-0100", "first_name": "Ana", "last_name": "Lima", "address": "5 Oak Street",
     "city": "New York", "postcode": "10001", "date_of_birth": "1990-05-06", "anonymous_id": "ga.1"},
    {"record_id": "klaviyo:a", "source": "klaviyo", "source_customer_id": "a", "email": "ana.lima+glow@gmail.com",
     "first_name": "Ana", "last_name": "Lima"},
    {"record_id": "ga4:ga.1", "source": "ga4", "anonymous_id": "ga.1"},
    {"record_id": "gorgias:9", "source": "gorgias", "source_customer_id": "9", "phone": "212.555.0100",
     "first_name": "Ana"},
    {"record_id": "shopify:2", "source": "shopify", "source_customer_id": "2", "email": "bo@example.com",
     "phone": "(312) 555-0101", "first_name": "Bo", "last_name": "Chen", "date_of_birth": "1971-01-02"},
    {"record_id": "recharge:5", "source": "recharge", "source_customer_id": "5", "email": "BO@example.com"},
])


def run(tmp_path, frame: pd.DataFrame, *extra: str) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    src = tmp_path / "records.csv"
    frame.to_csv(src, index=False)
    out, explain = tmp_path / "clusters.csv", tmp_path / "merges.csv"
    code = main(["cdp", "resolve", str(src), "--out", str(out), "--explain", str(explain), "--quiet", *extra])
    if code != 0:
        return code, pd.DataFrame(), pd.DataFrame()
    return code, pd.read_csv(out, dtype=str), pd.read_csv(explain, dtype=str)


def test_round_trip_all_columns(tmp_path):
    code, clusters, merges = run(tmp_path, RECORDS)
    assert code == 0
    assert clusters.record_id.tolist() == RECORDS.record_id.tolist()
    person = clusters.set_index("record_id").person_id
    ana = {"shopify:1", "klaviyo:a", "ga4:ga.1", "gorgias:9"}
    assert person[list(ana)].nunique() == 1
    assert person["shopify:2"] == person["recharge:5"] != person["shopify:1"]
    assert list(merges.columns) == ["record_a", "record_b", "method", "identifiers", "score", "explanation"]
    assert len(merges) == len(RECORDS) - person.nunique()
    assert set(merges.method) == {"email", "phone", "anonymous_id"}


@pytest.mark.parametrize(
    "columns",
    [["record_id"], ["record_id", "email"], ["record_id", "phone", "first_name"],
     ["record_id", "first_name", "last_name", "date_of_birth", "postcode"], ["record_id", "anonymous_id", "email"]],
)
def test_any_subset_of_columns(tmp_path, columns):
    code, clusters, _ = run(tmp_path, RECORDS[columns])
    assert code == 0
    assert clusters.record_id.tolist() == RECORDS.record_id.tolist()
    assert clusters.person_id.notna().all()


def test_previous_and_do_not_link_files(tmp_path):
    _, first, _ = run(tmp_path, RECORDS)
    prev = tmp_path / "previous.csv"
    first.assign(person_id="old-" + first.person_id).to_csv(prev, index=False)
    dnl = tmp_path / "dnl.csv"
    pd.DataFrame({"record_a": ["shopify:1"], "record_b": ["gorgias:9"]}).to_csv(dnl, index=False)
    rejected = tmp_path / "rejected.csv"
    code, clusters, _ = run(tmp_path, RECORDS, "--previous", str(prev), "--do-not-link", str(dnl),
                            "--rejected", str(rejected), "--threshold", "0.95")
    assert code == 0
    person = clusters.set_index("record_id").person_id
    assert person["shopify:1"] == "old-" + first.set_index("record_id").person_id["shopify:1"]
    assert person["gorgias:9"] != person["shopify:1"] and person["gorgias:9"].startswith("p_")
    reasons = pd.read_csv(rejected)
    assert reasons.reason.str.contains("do-not-link").any()


def test_bad_input_exits_2_with_message(tmp_path, capsys):
    assert main(["cdp", "resolve", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    assert "file not found" in capsys.readouterr().err
    code, _, _ = run(tmp_path, RECORDS.drop(columns="record_id"))
    assert code == 2 and "record_id" in capsys.readouterr().err
    code, _, _ = run(tmp_path, RECORDS, "--threshold", "2")
    assert code == 2 and "threshold" in capsys.readouterr().err
    assert not (tmp_path / "clusters.csv").exists()
