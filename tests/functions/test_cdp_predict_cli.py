"""``growthlens cdp predict``: transactions CSV in, one prediction row per customer out, the fitted parameters
and a holdout report printed; bad input names its column and row and exits 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.cdp.ltv import PREDICTION_COLUMNS
from functions.cli.main import main
from tests.core.cdp.test_btyd import simulate_customers

CUTOFF = pd.Timestamp("2024-06-30")


def transactions(n: int, seed: int = 1) -> pd.DataFrame:
    """Simulated customers as a transactions table: first purchases over the year before the cutoff, 120 days
    of holdout after it."""
    sim = simulate_customers(n, np.random.default_rng(seed), t_range=(20.0, 365.0), holdout=120.0)
    log = sim["log"]
    first = CUTOFF - pd.to_timedelta(np.floor(sim["T"]), unit="D")
    dates = first[log["customer"].to_numpy()] + pd.to_timedelta(np.floor(log["time"].to_numpy()), unit="D")
    return pd.DataFrame({"order_id": np.arange(len(log)), "cust": [f"c{i:05d}" for i in log["customer"]],
                         "ordered_at": dates.strftime("%Y-%m-%d"), "total": log["value"].round(2)})


def run(tmp_path, frame: pd.DataFrame, *extra: str, horizon: str = "120",
        cutoff: str = str(CUTOFF.date())) -> tuple[int, pd.DataFrame]:
    src, out = tmp_path / "tx.csv", tmp_path / "pred.csv"
    frame.to_csv(src, index=False)
    code = main(["cdp", "predict", str(src), "--customer-col", "cust", "--date-col", "ordered_at",
                 "--amount-col", "total", "--cutoff", cutoff, "--horizon-days", horizon,
                 "--out", str(out), *extra])
    return code, (pd.read_csv(out, dtype={"customer_id": str}) if code == 0 else pd.DataFrame())


def test_writes_one_row_per_customer_and_reports_the_holdout(tmp_path, capsys):
    tx = transactions(400)
    code, pred = run(tmp_path, tx)
    assert code == 0
    assert list(pred.columns) == ["customer_id", *PREDICTION_COLUMNS]
    calibration = tx[pd.to_datetime(tx["ordered_at"]) <= CUTOFF]
    assert sorted(pred["customer_id"]) == sorted(calibration["cust"].unique())
    assert pred[list(PREDICTION_COLUMNS)].notna().all().all()
    assert (pred["predicted_ltv_low"] <= pred["predicted_ltv_high"]).all()
    assert pred["p_alive"].between(0, 1).all() and pred["churn_probability"].between(0, 1).all()
    out = capsys.readouterr().out
    assert "BG/NBD: r=" in out and "Gamma-Gamma: p=" in out
    assert "holdout 2024-07-01 to 2024-10-28: purchases predicted" in out and "naive past rate" in out


def test_no_holdout_rows_no_holdout_report(tmp_path, capsys):
    tx = transactions(300)
    code, pred = run(tmp_path, tx[pd.to_datetime(tx["ordered_at"]) <= CUTOFF], "--discount-rate", "0.1")
    assert code == 0 and len(pred)
    assert (pred["predicted_ltv"] < pred["expected_revenue"]).all()
    assert "holdout" not in capsys.readouterr().out


@pytest.mark.parametrize(("change", "message"), [
    (lambda tx: tx.drop(columns="total"), "missing column(s) 'total'"),
    (lambda tx: tx.assign(ordered_at=tx["ordered_at"].mask(tx.index == 6, "2024-02-31")),
     "column 'ordered_at', row 7: cannot read '2024-02-31' as a date"),
    (lambda tx: tx.assign(total=tx["total"].mask(tx.index == 11, -5.0)), "column 'total', row 12: negative amount"),
    (lambda tx: tx.assign(total=tx["total"].astype(object).mask(tx.index == 2, "12,50")),
     "column 'total', row 3: cannot read '12,50' as an amount"),
    (lambda tx: tx[tx["cust"] < "c00040"], "need at least 50 customers"),
])
def test_bad_input_names_column_and_row_and_exits_2(tmp_path, capsys, change, message):
    code, _ = run(tmp_path, change(transactions(200)))
    assert code == 2
    assert message in capsys.readouterr().err


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["cdp", "predict", str(tmp_path / "none.csv"), "--customer-col", "c", "--date-col", "d",
                 "--amount-col", "a", "--cutoff", "2024-01-01", "--horizon-days", "30",
                 "--out", str(tmp_path / "o.csv")]) == 2
    assert "file not found" in capsys.readouterr().err
    code, _ = run(tmp_path, transactions(100), horizon="0")
    assert code == 2 and "--horizon-days" in capsys.readouterr().err
    code, _ = run(tmp_path, transactions(100), cutoff="end of June")
    assert code == 2 and "--cutoff: cannot read 'end of June' as a date" in capsys.readouterr().err
