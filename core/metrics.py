"""Descriptive marketing metrics: totals, period comparison, channel breakdown, series and quick insights.

Pure functions over the canonical ``marketing`` (long: date, channel, spend, clicks, conversions, revenue, ...) and
``kpis`` (date, revenue, orders, new_customers) tables. ``revenue`` in ``marketing`` is what the ad platforms
report; the business's true revenue is ``kpis.revenue``. Ratios of aggregated periods are ratios of sums (never
means of daily ratios). Long ranges are aggregated (day ≤ 120 days, week ≤ 2 years, else month) so a response never
carries thousands of raw rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "resolve_range", "previous_period", "auto_granularity", "period_start", "overview_totals", "change",
    "channel_breakdown", "channel_series", "channel_performance", "best_weekdays", "best_months",
    "quick_insights", "overview", "known_channels", "Daily",
]

GRANULARITIES = ("day", "week", "month")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
SUM_COLS = ("spend", "impressions", "clicks", "conversions", "revenue", "new_customers", "returning_customers")


# --- dates -----------------------------------------------------------------------------------------------------
def _parse_date(value: Any, field: str) -> pd.Timestamp:
    if isinstance(value, pd.Timestamp):
        return value.normalize()
    if isinstance(value, datetime | date):
        return pd.Timestamp(value).normalize()
    text = str(value).strip()
    try:
        return pd.Timestamp(date.fromisoformat(text))
    except ValueError:
        raise ValueError(f"{field} {text!r} is not a valid date (expected YYYY-MM-DD)") from None


def resolve_range(data_start: pd.Timestamp, data_end: pd.Timestamp, start: Any = None, end: Any = None,
                  default_days: int = 90) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The requested ``[start, end]`` (inclusive days), defaulting to the last ``default_days`` of data.

    Raises ``ValueError`` for unparsable dates, an end before the start, or a range with no data in it.
    """
    data_start, data_end = pd.Timestamp(data_start).normalize(), pd.Timestamp(data_end).normalize()
    e = _parse_date(end, "end_date") if end not in (None, "") else data_end
    if start not in (None, ""):
        s = _parse_date(start, "start_date")
    else:
        s = max(data_start, min(e, data_end) - pd.Timedelta(days=default_days - 1))
    if e < s:
        raise ValueError(f"end_date {e.date()} is before start_date {s.date()}")
    if e < data_start or s > data_end:
        raise ValueError(f"no data between {s.date()} and {e.date()}: the data covers {data_start.date()} to "
                         f"{data_end.date()}")
    return s, e


def previous_period(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The period of equal length that ends the day before ``start``."""
    days = (end - start).days + 1
    return start - pd.Timedelta(days=days), start - pd.Timedelta(days=1)


def auto_granularity(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """``day`` up to 120 days, ``week`` up to two years, else ``month``."""
    days = (pd.Timestamp(end) - pd.Timestamp(start)).days + 1
    if days <= 120:
        return "day"
    if days <= 731:
        return "week"
    return "month"


def _granularity(value: str | None, start: pd.Timestamp, end: pd.Timestamp) -> str:
    if value in (None, "", "auto"):
        return auto_granularity(start, end)
    if value not in GRANULARITIES:
        raise ValueError(f"granularity {value!r} is not one of day, week, month, auto")
    return value


def period_start(dates: pd.Series, granularity: str) -> pd.Series:
    """Label each date with the first day of its day/week (Monday)/month."""
    d = pd.to_datetime(dates).dt.normalize()
    if granularity == "day":
        return d
    if granularity == "week":
        return d - pd.to_timedelta(d.dt.day_of_week, unit="D")
    if granularity == "month":
        return d.dt.to_period("M").dt.start_time
    raise ValueError(f"granularity {granularity!r} is not one of day, week, month")


# --- helpers ---------------------------------------------------------------------------------------------------
def _slice(df: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    d = df["date"]
    return df[(d >= start) & (d <= end)]


def _div(a: float, b: float) -> float | None:
    return float(a) / float(b) if b and np.isfinite(b) and b != 0 else None


def _num(x: Any) -> float | None:
    """A JSON-safe float (NaN/inf → None)."""
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def _list(values: Any) -> list[float | None]:
    return [_num(v) for v in np.asarray(values, dtype=float)]


def known_channels(marketing: pd.DataFrame) -> list[str]:
    """Channels present in the data, by total spend (largest first)."""
    by = marketing.groupby("channel", observed=True)["spend"].sum().sort_values(ascending=False, kind="stable")
    return [str(c) for c in by.index]


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series(0.0, index=df.index)


# --- a daily cube: fast range sums ------------------------------------------------------------------------------
class Daily:
    """The marketing table as (day x channel) arrays and kpis as per-day arrays, so that totals, breakdowns and
    series over any date range are slice sums (the overview asks for several ranges per request)."""

    def __init__(self, marketing: pd.DataFrame, kpis: pd.DataFrame | None = None) -> None:
        d_codes, dates = pd.factorize(pd.to_datetime(marketing["date"]).dt.normalize(), sort=True)
        c_codes, chans = pd.factorize(marketing["channel"].astype(str), sort=True)
        n_d, n_c = len(dates), len(chans)
        flat = d_codes * n_c + c_codes
        self.dates = pd.DatetimeIndex(dates)
        self.rows = np.bincount(flat, minlength=n_d * n_c).reshape(n_d, n_c)
        self.values = {}
        for col in SUM_COLS:
            w = marketing[col].to_numpy(dtype=float, na_value=np.nan) if col in marketing else np.zeros(len(flat))
            self.values[col] = np.bincount(flat, weights=np.nan_to_num(w), minlength=n_d * n_c).reshape(n_d, n_c)
        self.present = {col: col in marketing for col in SUM_COLS}
        spend = self.values["spend"].sum(axis=0)
        self.order = sorted(range(n_c), key=lambda i: (-spend[i], str(chans[i])))
        self.channels = [str(chans[i]) for i in self.order]
        for key in list(self.values):
            self.values[key] = self.values[key][:, self.order]
        self.rows = self.rows[:, self.order]
        self.kpis: dict[str, np.ndarray] | None = None
        if kpis is not None and len(kpis):
            kd = pd.to_datetime(kpis["date"]).dt.normalize()
            k_codes, k_dates = pd.factorize(kd, sort=True)
            self.kpi_dates = pd.DatetimeIndex(k_dates)
            self.kpis = {col: np.bincount(k_codes, weights=np.nan_to_num(kpis[col].to_numpy(float, na_value=np.nan)),
                                          minlength=len(k_dates))
                         for col in ("revenue", "orders", "new_customers") if col in kpis}

    @staticmethod
    def _bounds(index: pd.DatetimeIndex, start: pd.Timestamp, end: pd.Timestamp) -> slice:
        return slice(int(index.searchsorted(start, "left")), int(index.searchsorted(end, "right")))

    def span(self, start: pd.Timestamp, end: pd.Timestamp) -> slice:
        """Row slice of the days in ``[start, end]``."""
        return self._bounds(self.dates, start, end)

    def has_rows(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        """Whether any marketing row falls in the range."""
        return bool(self.rows[self.span(start, end)].sum() > 0)

    def totals(self, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, float | None]:
        sl = self.span(start, end)
        spend = float(self.values["spend"][sl].sum())
        platform_revenue = float(self.values["revenue"][sl].sum())
        if self.kpis is not None:
            ks = self._bounds(self.kpi_dates, start, end)
            revenue = float(self.kpis["revenue"][ks].sum())
            orders = float(self.kpis["orders"][ks].sum()) if "orders" in self.kpis else None
            new_customers = float(self.kpis["new_customers"][ks].sum()) if "new_customers" in self.kpis else None
        else:
            revenue = platform_revenue
            orders = float(self.values["conversions"][sl].sum())
            new_customers = float(self.values["new_customers"][sl].sum()) if self.present["new_customers"] else None
        return {"spend": spend, "revenue": revenue, "roas": _div(revenue, spend),
                "platform_revenue": platform_revenue, "orders": orders, "new_customers": new_customers}

    def breakdown(self, start: pd.Timestamp, end: pd.Timestamp) -> list[dict[str, Any]]:
        sl = self.span(start, end)
        spend = self.values["spend"][sl].sum(axis=0)
        revenue = self.values["revenue"][sl].sum(axis=0)
        rows = self.rows[sl].sum(axis=0)
        total = float(spend.sum())
        idx = sorted((i for i in range(len(self.channels)) if rows[i] > 0),
                     key=lambda i: (-spend[i], self.channels[i]))
        return [{"channel": self.channels[i], "spend": float(spend[i]), "platform_revenue": float(revenue[i]),
                 "platform_roas": _div(revenue[i], spend[i]), "share_of_spend": _div(spend[i], total) or 0.0}
                for i in idx]

    def series(self, start: pd.Timestamp, end: pd.Timestamp, granularity: str | None = None) -> dict[str, Any]:
        gran = _granularity(granularity, start, end)
        sl = self.span(start, end)
        days = self.dates[sl]
        labels = period_start(pd.Series(days), gran).to_numpy()
        out: dict[str, Any] = {"dates": [], "granularity": gran, "spend": {}, "revenue": {}}
        if len(days) == 0:
            return out
        starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        periods = labels[starts]
        out["dates"] = [pd.Timestamp(d).date().isoformat() for d in periods]
        spend = np.add.reduceat(self.values["spend"][sl], starts, axis=0)
        revenue = np.add.reduceat(self.values["revenue"][sl], starts, axis=0)
        rows = self.rows[sl].sum(axis=0)
        idx = sorted((i for i in range(len(self.channels)) if rows[i] > 0),
                     key=lambda i: (-spend[:, i].sum(), self.channels[i]))
        out["spend"] = {self.channels[i]: _list(spend[:, i]) for i in idx}
        out["revenue"] = {self.channels[i]: _list(revenue[:, i]) for i in idx}
        if self.kpis is not None:
            ks = self._bounds(self.kpi_dates, start, end)
            k_labels = period_start(pd.Series(self.kpi_dates[ks]), gran).to_numpy()
            sums = pd.Series(self.kpis["revenue"][ks]).groupby(k_labels).sum()
            out["total_revenue"] = _list(sums.reindex(periods).to_numpy())
        return out


# --- totals and comparison -------------------------------------------------------------------------------------
def overview_totals(marketing: pd.DataFrame, kpis: pd.DataFrame | None, start: pd.Timestamp,
                    end: pd.Timestamp) -> dict[str, float | None]:
    """Spend, business revenue (kpis; platform revenue when there is no kpis table), ROAS and counts in a range."""
    return Daily(marketing, kpis).totals(start, end)


def change(current: float | None, previous: float | None) -> dict[str, float | None]:
    """Absolute and relative change (``pct`` as a fraction: 0.12 = +12%; ``None`` when the base is zero/missing)."""
    if current is None or previous is None:
        return {"abs": None, "pct": None}
    return {"abs": float(current - previous), "pct": _div(current - previous, abs(previous)) if previous else None}


def channel_breakdown(marketing: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> list[dict[str, Any]]:
    """Per channel: spend, platform revenue, platform ROAS and share of spend, largest spend first."""
    return Daily(marketing).breakdown(start, end)


def channel_series(marketing: pd.DataFrame, kpis: pd.DataFrame | None, start: pd.Timestamp, end: pd.Timestamp,
                   granularity: str | None = None) -> dict[str, Any]:
    """Spend and platform revenue per channel per period, plus the business revenue per period (for charts)."""
    return Daily(marketing, kpis).series(start, end, granularity)


# --- one channel -----------------------------------------------------------------------------------------------
def _check_channel(marketing: pd.DataFrame, channel: str) -> pd.DataFrame:
    rows = marketing[marketing["channel"] == channel]
    if rows.empty:
        known = ", ".join(known_channels(marketing))
        raise LookupError(f"unknown channel {channel!r}; the data has: {known}")
    return rows


def _ratios(spend: Any, revenue: Any, clicks: Any, conversions: Any) -> dict[str, Any]:
    spend, revenue = np.asarray(spend, float), np.asarray(revenue, float)
    clicks, conversions = np.asarray(clicks, float), np.asarray(conversions, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"cpc": spend / clicks, "cpa": spend / conversions, "conversion_rate": conversions / clicks,
                "platform_roas": revenue / spend}


def channel_performance(marketing: pd.DataFrame, channel: str, start: pd.Timestamp, end: pd.Timestamp,
                        granularity: str | None = None) -> dict[str, Any]:
    """A channel's metrics over time and in total: spend, platform revenue, clicks, conversions, CPC, CPA,
    conversion rate and platform ROAS (ratios of sums per period).

    Raises ``LookupError`` for a channel that is not in the data.
    """
    rows = _check_channel(marketing, channel)
    gran = _granularity(granularity, start, end)
    m = _slice(rows, start, end)
    cols = {c: _col(m, c) for c in ("spend", "revenue", "clicks", "conversions", "impressions")}
    frame = pd.DataFrame(cols).assign(period=period_start(m["date"], gran).values)
    g = frame.groupby("period").sum().sort_index()
    r = _ratios(g["spend"], g["revenue"], g["clicks"], g["conversions"])
    series = {"dates": [d.date().isoformat() for d in g.index], "granularity": gran,
              "spend": _list(g["spend"]), "platform_revenue": _list(g["revenue"]), "clicks": _list(g["clicks"]),
              "conversions": _list(g["conversions"]), "impressions": _list(g["impressions"]),
              **{k: _list(v) for k, v in r.items()}}
    tot = frame[["spend", "revenue", "clicks", "conversions", "impressions"]].sum()
    tr = _ratios(tot["spend"], tot["revenue"], tot["clicks"], tot["conversions"])
    days = max(int((end - start).days) + 1, 1)
    totals = {"spend": float(tot["spend"]), "platform_revenue": float(tot["revenue"]), "clicks": float(tot["clicks"]),
              "conversions": float(tot["conversions"]), "impressions": float(tot["impressions"]),
              "avg_daily_spend": float(tot["spend"]) / days,
              **{k: _num(v) for k, v in tr.items()}}
    return {"channel": channel, "series": series, "totals": totals}


def _ranked(groups: pd.DataFrame, labels: dict[int, str], key: str) -> list[dict[str, Any]]:
    """Per group (weekday or month): average daily spend and revenue, ROAS, and the revenue index (1.0 = mean)."""
    mean_rev = float(groups["revenue"].mean()) if len(groups) else 0.0
    out = []
    for idx, row in groups.iterrows():
        out.append({key: int(idx), "label": labels[int(idx)], "avg_daily_spend": float(row["spend"]),
                    "avg_daily_revenue": float(row["revenue"]), "platform_roas": _div(row["revenue_sum"],
                                                                                     row["spend_sum"]),
                    "revenue_index": _div(row["revenue"], mean_rev), "days": int(row["days"])})
    # rank by ROAS where spend varies with the period; channels without spend rank by revenue
    if all(o["platform_roas"] is not None for o in out):
        out.sort(key=lambda o: -o["platform_roas"])
    else:
        out.sort(key=lambda o: -(o["revenue_index"] or 0.0))
    for i, o in enumerate(out, 1):
        o["rank"] = i
    return out


def _daily(rows: pd.DataFrame) -> pd.DataFrame:
    d = rows.groupby("date")[["spend", "revenue"]].sum()
    return d


def _grouped(daily: pd.DataFrame, keys: np.ndarray) -> pd.DataFrame:
    g = daily.groupby(keys)
    return pd.DataFrame({"spend": g["spend"].mean(), "revenue": g["revenue"].mean(),
                         "spend_sum": g["spend"].sum(), "revenue_sum": g["revenue"].sum(), "days": g.size()})


def best_weekdays(marketing: pd.DataFrame, channel: str, start: pd.Timestamp, end: pd.Timestamp) -> list[dict]:
    """Weekdays of a channel ranked by platform ROAS (by revenue when some weekday has no spend)."""
    daily = _daily(_slice(_check_channel(marketing, channel), start, end))
    if daily.empty:
        return []
    return _ranked(_grouped(daily, daily.index.day_of_week.values), dict(enumerate(WEEKDAYS)), "weekday")


def best_months(marketing: pd.DataFrame, channel: str, start: pd.Timestamp | None = None,
                end: pd.Timestamp | None = None) -> list[dict]:
    """Calendar months of a channel ranked by platform ROAS, over the given range (default: all the data)."""
    rows = _check_channel(marketing, channel)
    if start is not None and end is not None:
        rows = _slice(rows, start, end)
    daily = _daily(rows)
    if daily.empty:
        return []
    return _ranked(_grouped(daily, daily.index.month.values), {i + 1: m for i, m in enumerate(MONTHS)}, "month")


# --- insights --------------------------------------------------------------------------------------------------
def _fmt_money(x: float) -> str:
    v = abs(x)
    if v >= 1e6:
        body = f"{v / 1e6:.1f}M"
    elif v >= 1e4:
        body = f"{v / 1e3:.0f}K"
    else:
        body = f"{v:,.0f}"
    return ("-" if x < 0 else "") + "$" + body


def _fmt_pct(x: float) -> str:
    v = abs(x) * 100
    body = f"{v:.1f}" if v < 9.95 else f"{v:.0f}"
    return body.removesuffix(".0") + "%"


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def quick_insights(marketing: pd.DataFrame | Daily, kpis: pd.DataFrame | None, start: pd.Timestamp,
                   end: pd.Timestamp, min_share: float = 0.02, yoy_threshold: float = 0.1) -> list[dict[str, str]]:
    """Short findings computed from the data in the range: best and worst channel by platform ROAS, the channels
    whose ROAS and spend moved most year over year, the largest shift in spend share against the previous period,
    and the business revenue trend. Channels with under ``min_share`` of spend are ignored (their ratios are noise);
    a year-over-year move is reported only when it is at least ``yoy_threshold`` (relative).
    """
    daily = marketing if isinstance(marketing, Daily) else Daily(marketing, kpis)

    def by_channel(a: pd.Timestamp, b: pd.Timestamp) -> dict[str, dict]:
        return {c["channel"]: c for c in daily.breakdown(a, b)}

    out: list[dict[str, str]] = []
    cur = by_channel(start, end)
    material = {c: v for c, v in cur.items() if v["share_of_spend"] >= min_share and v["platform_roas"] is not None}
    if material:
        best = max(material.values(), key=lambda v: v["platform_roas"])
        worst = min(material.values(), key=lambda v: v["platform_roas"])
        out.append({"title": "Best platform ROAS", "kind": "positive",
                    "text": f"{best['channel']} returns {best['platform_roas']:.2f}x platform ROAS on "
                            f"{_fmt_money(best['spend'])} spend ({best['share_of_spend'] * 100:.0f}% of budget)."})
        if worst["channel"] != best["channel"]:
            out.append({"title": "Lowest platform ROAS", "kind": "warning",
                        "text": f"{worst['channel']} returns {worst['platform_roas']:.2f}x platform ROAS on "
                                f"{_fmt_money(worst['spend'])} spend."})

    # year over year: the same dates one year earlier, when the data reaches back that far
    ys, ye = start - pd.DateOffset(years=1), end - pd.DateOffset(years=1)
    data_start = daily.dates[0]
    if ys >= data_start:
        prev = by_channel(ys, ye)
        moves = []
        for c, v in material.items():
            p = prev.get(c)
            if p and p["platform_roas"] and p["spend"] > 0:
                moves.append((c, v["platform_roas"], p["platform_roas"], v["platform_roas"] / p["platform_roas"] - 1))
        if moves and max(abs(t[3]) for t in moves) >= yoy_threshold:
            c, now, then, rel = max(moves, key=lambda t: abs(t[3]))
            kind = "positive" if rel > 0 else "warning"
            verb = "up" if rel > 0 else "down"
            out.append({"title": "Biggest ROAS change year over year", "kind": kind,
                        "text": f"{c} platform ROAS {verb} {_fmt_pct(rel)} year over year "
                                f"({then:.2f}x → {now:.2f}x)."})
        growth = [(c, v["spend"], prev[c]["spend"], v["spend"] / prev[c]["spend"] - 1)
                  for c, v in material.items() if c in prev and prev[c]["spend"] > 0]
        if growth and max(abs(t[3]) for t in growth) >= yoy_threshold:
            c, now, then, rel = max(growth, key=lambda t: abs(t[3]))
            verb = "up" if rel > 0 else "down"
            out.append({"title": "Biggest spend change year over year", "kind": "info",
                        "text": f"{c} spend {verb} {_fmt_pct(rel)} year over year ({_fmt_money(then)} → "
                                f"{_fmt_money(now)}), now {material[c]['share_of_spend'] * 100:.0f}% of budget."})

    ps, pe = previous_period(start, end)
    if ps >= data_start:
        prev = by_channel(ps, pe)
        shifts = [(c, v["share_of_spend"], prev[c]["share_of_spend"]) for c, v in cur.items() if c in prev]
        if shifts:
            c, now, then = max(shifts, key=lambda t: abs(t[1] - t[2]))
            if abs(now - then) >= 0.005:
                verb = "grew" if now > then else "fell"
                out.append({"title": "Largest shift in spend mix", "kind": "info",
                            "text": f"{_possessive(c)} share of spend {verb} from {then * 100:.0f}% to "
                                    f"{now * 100:.0f}% against the previous {(end - start).days + 1} days."})
        t_now, t_prev = daily.totals(start, end), daily.totals(ps, pe)
        rc, sc = change(t_now["revenue"], t_prev["revenue"]), change(t_now["spend"], t_prev["spend"])
        if rc["pct"] is not None and sc["pct"] is not None:
            kind = "positive" if rc["pct"] >= sc["pct"] else "warning"
            rv = "rose" if rc["pct"] >= 0 else "fell"
            sv = "rose" if sc["pct"] >= 0 else "fell"
            out.append({"title": "Revenue against spend", "kind": kind,
                        "text": f"Revenue {rv} {_fmt_pct(rc['pct'])} ({_fmt_money(rc['abs'])}) while spend {sv} "
                                f"{_fmt_pct(sc['pct'])} against the previous {(end - start).days + 1} days."})
    return out


# --- the overview in one call ----------------------------------------------------------------------------------
def overview(marketing: pd.DataFrame, kpis: pd.DataFrame | None, start: Any = None, end: Any = None,
             granularity: str | None = None, default_days: int = 90) -> dict[str, Any]:
    """Everything the Overview screen shows for ``[start, end]`` (default: the last ``default_days`` of data)."""
    daily = Daily(marketing, kpis)
    lo, hi = daily.dates[0], daily.dates[-1]
    s, e = resolve_range(lo, hi, start, end, default_days)
    ps, pe = previous_period(s, e)
    now, before = daily.totals(s, e), daily.totals(ps, pe)
    has_previous = daily.has_rows(ps, pe)
    return {
        "start_date": s.date().isoformat(), "end_date": e.date().isoformat(),
        "data_start": lo.date().isoformat(), "data_end": hi.date().isoformat(),
        "previous": {"start_date": ps.date().isoformat(), "end_date": pe.date().isoformat(),
                     "available": has_previous},
        "totals": now,
        "previous_totals": before if has_previous else None,
        "change": {k: change(now[k], before[k]) if has_previous else {"abs": None, "pct": None}
                   for k in ("spend", "revenue", "roas", "platform_revenue", "orders", "new_customers")},
        "channels": daily.breakdown(s, e),
        "series": daily.series(s, e, granularity),
        "insights": quick_insights(daily, kpis, s, e),
    }
