"""Public holidays and retail events as candidate baseline regressors when the data name no events.

A brand that uploads only spend and revenue still has Christmas, Black Friday and its country's public holidays in
its KPI; left out of the model, their spikes are explained by whatever channel happened to spend then. The
``holidays`` package gives each country's public holidays; the retail days every DTC brand plans around (Black
Friday, Cyber Monday, Christmas Eve, New Year's Eve, the days before Christmas) are derived from the calendar.
Each becomes a row of the ``external_factors`` table, so it enters the baseline exactly like a user's own event
(one ridge-penalised regressor per name), and the fit keeps those the data support.
"""

from __future__ import annotations

import holidays as _holidays
import numpy as np
import pandas as pd

__all__ = ["calendar_events", "DEFAULT_COUNTRY"]

DEFAULT_COUNTRY = "US"


def _retail_days(years: range) -> list[tuple[pd.Timestamp, str]]:
    out: list[tuple[pd.Timestamp, str]] = []
    for y in years:
        nov1 = pd.Timestamp(y, 11, 1)  # Black Friday: the day after the US Thanksgiving (4th Thursday of November),
        thanksgiving = nov1 + pd.Timedelta(days=(3 - nov1.day_of_week) % 7 + 21)  # marketed on that day everywhere
        bf = thanksgiving + pd.Timedelta(days=1)
        out += [(bf, "Black Friday"), (bf + pd.Timedelta(days=3), "Cyber Monday")]
        out += [(bf + pd.Timedelta(days=d), "Black Friday weekend") for d in (1, 2)]
        out += [(pd.Timestamp(y, 12, 24), "Christmas Eve"), (pd.Timestamp(y, 12, 31), "New Year's Eve")]
        out += [(pd.Timestamp(y, 12, d), "Days before Christmas") for d in range(17, 24)]
        out += [(pd.Timestamp(y, 12, d), "Days after Christmas") for d in range(26, 31)]
    return out


def calendar_events(start: pd.Timestamp, end: pd.Timestamp, country: str = DEFAULT_COUNTRY) -> pd.DataFrame:
    """Holidays and retail events between ``start`` and ``end`` as an ``external_factors`` table.

    Columns: date, factor_type ("holiday"), factor_name, impact_multiplier (NaN: the fit estimates each effect),
    description. Holidays observed on another day keep their name. Unknown country codes raise ``ValueError``.
    """
    code = (country or DEFAULT_COUNTRY).upper()
    years = range(pd.Timestamp(start).year, pd.Timestamp(end).year + 1)
    try:
        cal = _holidays.country_holidays(code, years=list(years))
    except (KeyError, NotImplementedError) as e:
        raise ValueError(f"unknown country {country!r} for public holidays; use an ISO code such as US, GB, DE") from e
    rows = [(pd.Timestamp(d), str(name).replace(" (observed)", "").replace(" (Observed)", ""))
            for d, name in cal.items()]
    rows += _retail_days(years)
    df = pd.DataFrame(rows, columns=["date", "factor_name"]).drop_duplicates()
    df = df[(df["date"] >= pd.Timestamp(start)) & (df["date"] <= pd.Timestamp(end))]
    df = df.assign(factor_type="holiday", impact_multiplier=np.nan,
                   description=f"public holiday or retail event ({code} calendar)")
    return df[["date", "factor_type", "factor_name", "impact_multiplier", "description"]].sort_values(
        "date").reset_index(drop=True)
