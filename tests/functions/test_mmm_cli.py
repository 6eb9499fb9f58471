"""``growthlens mmm fit`` and ``growthlens mmm optimize`` end to end on files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from functions.cli.main import main
from tests.core.mmm.test_plan import WORLD_1, hill, make_artifact


def test_optimize_writes_a_plan(tmp_path, capsys) -> None:
    model = tmp_path / "model.json"
    model.write_text(json.dumps(make_artifact(WORLD_1)))
    out = tmp_path / "plan.json"
    rc = main(["mmm", "optimize", str(model), "--max-change", "0.3", "--min", "Meta Ads=3000", "--lock", "Affiliate",
               "--out", str(out)])
    assert rc == 0
    plan = json.loads(out.read_text())
    a, cur = plan["allocation"], plan["current"]
    assert set(a) == set(WORLD_1) and cur["Google Ads"] == 6200
    assert a["Affiliate"] == pytest.approx(800) and a["Meta Ads"] >= 3000 - 1e-6
    assert all(abs(a[n] - cur[n]) <= 0.3 * cur[n] + 1e-6 for n in a)
    p = plan["projection"]
    assert p["lift_per_day_low"] <= p["lift_per_day"] <= p["lift_per_day_high"] and p["lift_per_day"] > 0
    assert "projected lift" in capsys.readouterr().out


def test_optimize_budget_and_goal(tmp_path) -> None:
    model = tmp_path / "model.json"
    model.write_text(json.dumps(make_artifact(WORLD_1)))
    out = tmp_path / "plan.json"
    assert main(["mmm", "optimize", str(model), "--daily-budget", "10000", "--out", str(out)]) == 0
    assert sum(json.loads(out.read_text())["allocation"].values()) <= 10000 + 1e-6
    assert main(["mmm", "optimize", str(model), "--goal", "max_profit", "--margin", "0.5", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["goal"] == "max_profit"


@pytest.mark.parametrize("args,msg", [
    (["--min", "Radio=5"], "unknown channel"),
    (["--min", "Google Ads"], "CHANNEL=AMOUNT"),
    (["--max", "TikTok=lots"], "not a number"),
    (["--daily-budget", "100", "--min", "TikTok=500"], "below the sum"),
])
def test_optimize_bad_input_exits_2(tmp_path, capsys, args, msg) -> None:
    model = tmp_path / "model.json"
    model.write_text(json.dumps(make_artifact(WORLD_1)))
    assert main(["mmm", "optimize", str(model), *args, "--out", str(tmp_path / "p.json")]) == 2
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_optimize_missing_model(tmp_path, capsys) -> None:
    assert main(["mmm", "optimize", str(tmp_path / "nope.json"), "--out", str(tmp_path / "p.json")]) == 2
    assert "not found" in capsys.readouterr().err


def test_fit_then_optimize(tmp_path, capsys) -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    dates = pd.date_range("2025-01-01", periods=364)
    df = pd.DataFrame({"day": dates})
    kpi = 20000 + 2000 * np.sin(2 * np.pi * np.arange(364) / 7) + rng.normal(0, 400, 364)
    for name, (beta, half, cur) in {"search": (9000, 2500, 3000), "social": (6000, 1500, 1200)}.items():
        x = cur * np.exp(rng.normal(0, 0.4, 364))
        df[name] = x
        kpi = kpi + hill(x, beta, half, 1.0)
    df["sales"] = kpi
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    model = tmp_path / "out" / "model.json"
    rc = main(["mmm", "fit", str(data), "--date-col", "day", "--kpi-col", "sales", "--spend-cols", "search,social",
               "--n-boot", "20", "--quiet", "--out", str(model)])
    assert rc == 0, capsys.readouterr().err
    art = json.loads(model.read_text())
    assert set(art["channels"]) == {"search", "social"} and art["granularity"] == "day"
    plan_file = tmp_path / "plan.json"
    assert main(["mmm", "optimize", str(model), "--out", str(plan_file)]) == 0
    assert set(json.loads(plan_file.read_text())["allocation"]) == {"search", "social"}
    assert art["events"] == "calendar (US)" and "factor:Christmas Day" in art["baseline_terms"]
    # the KPI form and the holiday calendar are the user's to set
    other = tmp_path / "log.json"
    rc = main(["mmm", "fit", str(data), "--date-col", "day", "--kpi-col", "sales", "--spend-cols", "search,social",
               "--n-boot", "0", "--quiet", "--kpi-form", "log", "--country", "none", "--out", str(other)])
    assert rc == 0, capsys.readouterr().err
    art2 = json.loads(other.read_text())
    assert art2["kpi_form"] == "log" and art2["events"] == "none"
    assert not any(t.startswith("factor:") for t in art2["baseline_terms"])
    rc = main(["mmm", "fit", str(data), "--date-col", "day", "--kpi-col", "sales", "--spend-cols", "search,social",
               "--n-boot", "0", "--quiet", "--country", "XX", "--out", str(other)])
    assert rc == 2 and "unknown country 'XX'" in capsys.readouterr().err
    lift = tmp_path / "lift.csv"
    lift.write_text("channel,start,end,spend_change,lift,se\nsearch,2025-03-03,2025-03-30,-3000,-80000,8000\n")
    rc = main(["mmm", "fit", str(data), "--date-col", "day", "--kpi-col", "sales", "--spend-cols", "search,social",
               "--n-boot", "0", "--quiet", "--lift-tests", str(lift), "--out", str(other)])
    assert rc == 0, capsys.readouterr().err
    assert [r["channel"] for r in json.loads(other.read_text())["lift_tests"]] == ["search"]
    lift.write_text("channel,start,end,spend_change,lift,se\ntv,2025-03-03,2025-03-30,-3000,-80000,8000\n")
    rc = main(["mmm", "fit", str(data), "--date-col", "day", "--kpi-col", "sales", "--spend-cols", "search,social",
               "--n-boot", "0", "--quiet", "--lift-tests", str(lift), "--out", str(other)])
    assert rc == 2 and "lift_tests row 1, column channel: 'tv'" in capsys.readouterr().err


def test_fit_bad_columns(tmp_path, capsys) -> None:
    data = tmp_path / "d.csv"
    data.write_text("date,revenue,a\n2025-01-01,1,2\nnot a date,1,2\n")
    assert main(["mmm", "fit", str(data), "--spend-cols", "a,b", "--out", str(tmp_path / "m.json")]) == 2
    assert "no column(s) b" in capsys.readouterr().err
    assert main(["mmm", "fit", str(data), "--spend-cols", "a", "--out", str(tmp_path / "m.json")]) == 2
    assert "row 3, column date" in capsys.readouterr().err
