"""Budget optimizer: current against recommended daily spend per channel with each move's chance of gaining
revenue, the projected lift with its interval, the moves held back and why, the lift tests to run before moving
channels the data cannot pin down, and a what-if simulator — one slider per channel that re-projects revenue while
it moves.
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn

from dashboard.client import ApiClient, ApiError
from dashboard.components import KPI_CSS, TABLE_CSS, error_alert, kpi_card, note, section_title
from dashboard.format import money, ratio, share

TITLE = "Budget Optimizer"
SECTION = "Marketing"
ORDER = 40

PAGE_CSS = TABLE_CSS + """
.gl-up {color: #1a7f37; font-weight: 700;} .gl-down {color: #c62828; font-weight: 700;} .gl-flat {color: #5f6b7a;}
"""
ARROW_CLS = {"↑": "gl-up", "↓": "gl-down", "→": "gl-flat"}
GOALS = {"Most revenue for the budget": "max_revenue", "Most profit at a gross margin": "max_profit",
         "Spend down to a marginal ROAS": "target_mroas"}


def plan_table(plan: dict[str, Any]) -> str:
    """Current vs optimized per channel with arrows and marginal ROAS before/after (HTML)."""
    rows = []
    for r in plan["channels"]:
        fixed = bool(r.get("fixed_cost"))  # a flat fee: more spend buys no response, marginal ROAS does not apply
        tag = " (fixed cost)" if fixed else (" (locked)" if r.get("locked") else "")
        arrow = html.escape(r["arrow"])
        held = " <span class='gl-held-mark' title='held back'>(held back)</span>" if r.get("held_back") else ""
        rows.append(
            f"<tr><td class='num'>{money(r['current'])}</td><td>{html.escape(r['channel'])}{tag}</td>"
            f"<td class='num gl-opt'>{money(r['optimized'])} <span class='{ARROW_CLS.get(r['arrow'], '')}'>"
            f"{arrow}</span></td><td class='num'>{money(round(r['change']), signed=True)}</td>"
            f"<td class='num'>{ratio(None if fixed else r['marginal_roas_before'])}</td>"
            f"<td class='num'>{ratio(None if fixed else r['marginal_roas_after'])}</td>"
            f"<td class='num gl-prob'>{share(r.get('prob_gain'))}{held}</td></tr>")
    return ("<table class='gl-table gl-plan'><tr><th class='num'>Current /day</th><th>Channel</th>"
            "<th class='num'>Optimized /day</th><th class='num'>Change</th><th class='num'>Marginal ROAS now</th>"
            "<th class='num'>Marginal ROAS after</th><th class='num'>Chance the move gains revenue</th></tr>"
            + "".join(rows) + "</table>")


def held_html(plan: dict[str, Any]) -> str:
    """The channels the plan kept nearer their current spend than the model's best guess, each with its reason."""
    rows = [r for r in plan["channels"] if r.get("held_back")]
    if not rows:
        return "<p class='gl-note gl-held'>No move was held back: the plan goes as far as the model's best guess.</p>"
    return "<ul class='gl-held'>" + "".join(
        f"<li><b>{html.escape(r['channel'])}</b>: {html.escape(r['held_back'])}</li>" for r in rows) + "</ul>"


def tests_html(tests: list[dict[str, Any]]) -> str:
    """The recommended lift tests: what to change, for how long, and how much it would narrow the ROAS."""
    if not tests:
        return ("<p class='gl-note gl-tests'>No test is needed first: every channel with a real share of spend is "
                "known well enough to move.</p>")
    body = "".join(
        f"<tr><td>{html.escape(t['channel'])}</td><td class='num'>{money(t['spend_change_per_day'], signed=True)}"
        f"</td><td class='num'>{t['weeks']}</td><td class='num'>{ratio(t['roas_interval'][0])}–"
        f"{ratio(t['roas_interval'][1])}</td><td class='num'>{ratio(t['roas_interval_after'][0])}–"
        f"{ratio(t['roas_interval_after'][1])}</td><td>{html.escape(t['reason'])}</td></tr>"
        for t in tests)
    actions = "".join(f"<li>{html.escape(t['action'])}.</li>" for t in tests)
    return ("<table class='gl-table gl-tests'><tr><th>Channel</th><th class='num'>Spend change /day</th>"
            "<th class='num'>Weeks</th><th class='num'>ROAS now (90%)</th><th class='num'>ROAS after (90%)</th>"
            "<th>Why</th></tr>" + body + f"</table><ul class='gl-test-actions'>{actions}</ul>")


def interval(low: float, high: float) -> str:
    """'90% interval $a to $b' for a card's delta line."""
    return f"90% interval {money(low, signed=True)} to {money(high, signed=True)}"


class OptimizerPage:
    """The optimizer page of one browser session."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.plan: dict[str, Any] | None = None
        self.current: dict[str, float] = {}
        self.fixed: set[str] = set()
        self.sliders: dict[str, pn.widgets.FloatSlider] = {}
        self._applying = False
        self.budget = pn.widgets.FloatInput(name="Total daily budget ($)", start=0, step=100, width=180)
        self.max_change = pn.widgets.FloatSlider(name="Max change per channel (0 = no limit)", start=0, end=1,
                                                 step=0.05, value=0.0, width=260)
        self.goal = pn.widgets.Select(name="Goal", options=GOALS, value="max_revenue", width=260)
        self.margin = pn.widgets.FloatInput(name="Gross margin", value=0.5, start=0.01, end=1, step=0.05, width=120)
        self.mroas = pn.widgets.FloatInput(name="Target marginal ROAS", value=1.0, start=0.05, step=0.1, width=150)
        self.locked = pn.widgets.CheckBoxGroup(name="Locked channels", options=[], inline=True)
        self.run = pn.widgets.Button(name="Optimize", button_type="primary", width=120)
        self.reset = pn.widgets.Button(name="Reset to current", width=150)
        self.apply = pn.widgets.Button(name="Apply optimized", button_type="success", width=150)
        self.table = pn.pane.HTML("", stylesheets=[PAGE_CSS], sizing_mode="stretch_width")
        self.plan_cards = pn.Row(sizing_mode="stretch_width")
        self.notes = pn.Column(sizing_mode="stretch_width")
        self.held = pn.pane.HTML("", stylesheets=[PAGE_CSS], sizing_mode="stretch_width")
        self.tests = pn.pane.HTML("", stylesheets=[PAGE_CSS], sizing_mode="stretch_width")
        self.sim_cards = pn.Row(sizing_mode="stretch_width")
        self.slider_box = pn.Column(sizing_mode="stretch_width")
        self.message = pn.Column(sizing_mode="stretch_width")
        self.run.on_click(lambda _: self.optimize())
        self.reset.on_click(lambda _: self.set_sliders(self.current))
        self.apply.on_click(lambda _: self.set_sliders(self.plan["allocation"] if self.plan else self.current))
        self.layout = pn.Column(
            note("Recommendations come from the fitted marketing mix model. Amounts are daily spend; the lift is "
                 "extra revenue against the current mix, with its 90% interval."),
            self.message,
            pn.Row(self.budget, self.goal, self.margin, self.mroas, self.max_change),
            pn.Row(pn.pane.HTML("<span class='gl-note'>Lock:</span>", stylesheets=[KPI_CSS]), self.locked, self.run),
            self.plan_cards, self.table,
            section_title("Held back"), self.held,
            section_title("Test before you move"),
            note("Where the data cannot pin a channel down, a lift test settles it faster than a guess."),
            self.tests, self.notes,
            section_title("What-if simulator"),
            note("Move a slider to see the projected revenue of that mix; fixed costs do not change revenue."),
            pn.Row(self.reset, self.apply), self.sim_cards, self.slider_box,
            sizing_mode="stretch_width",
        )
        self.optimize(first=True)

    # ----------------------------------------------------------------------------------------------- optimizer
    def request(self) -> dict[str, Any]:
        """The optimize request from the controls."""
        body: dict[str, Any] = {"goal": self.goal.value, "locked": list(self.locked.value)}
        if self.budget.value:
            body["daily_budget"] = float(self.budget.value)
        if self.max_change.value:
            body["max_change"] = float(self.max_change.value)
        if self.goal.value == "max_profit":
            body["margin"] = float(self.margin.value)
        if self.goal.value == "target_mroas":
            body["target_mroas"] = float(self.mroas.value)
        return body

    def optimize(self, first: bool = False) -> None:
        """Ask the API for a plan and show it."""
        self.message.objects = []
        try:
            plan = self.client.post("/api/optimize", json={} if first else self.request())
        except ApiError as e:
            self.message.objects = [error_alert(e, "the budget plan")]
            return
        self.plan = plan
        if first:
            self.current = {k: float(v) for k, v in plan["current"].items()}
            self.fixed = {r["channel"] for r in plan["channels"] if r.get("fixed_cost")}
            self.budget.value = round(plan["total_current"], 2)
            self.locked.options = [c for c in self.current if c not in self.fixed]
            self.build_sliders()
        p = plan["projection"]
        self.plan_cards.objects = [
            kpi_card("Projected lift per year", money(p["lift_per_year"], signed=True), key="plan-lift"),
            kpi_card("Lift per day", money(p["lift_per_day"], signed=True), key="plan-lift-day"),
            kpi_card("Optimized daily spend", money(plan["total_optimized"]), key="plan-spend"),
            note(interval(p["lift_per_year_low"], p["lift_per_year_high"]) + " per year"),
        ]
        self.table.object = plan_table(plan)
        self.held.object = held_html(plan)
        self.tests.object = tests_html(plan.get("tests") or [])
        self.notes.objects = [note(n) for n in plan["notes"]]

    # ----------------------------------------------------------------------------------------------- what-if
    def build_sliders(self) -> None:
        """One slider per channel from 0 to well past both the current and the recommended spend."""
        self.sliders = {}
        for name, cur in self.current.items():
            top = max(2 * cur, 1.2 * float(self.plan["allocation"].get(name, cur)), 100.0) if self.plan else 2 * cur
            s = pn.widgets.FloatSlider(name=name, start=0.0, end=float(round(top, -1) + 10), value=float(cur),
                                       step=max(1.0, round(top / 200)), format="0,0", disabled=name in self.fixed,
                                       sizing_mode="stretch_width", css_classes=["gl-slider"])
            s.param.watch(self._on_slide, "value")
            self.sliders[name] = s
        self.slider_box.objects = list(self.sliders.values())
        self.simulate()

    def _on_slide(self, _: Any) -> None:
        if not self._applying:
            self.simulate()

    def set_sliders(self, allocation: dict[str, float]) -> None:
        """Move every slider (reset / apply the plan), then project once."""
        self._applying = True
        try:
            for name, s in self.sliders.items():
                v = float(allocation.get(name, self.current.get(name, 0.0)))
                s.end = max(s.end, v)
                s.value = v
        finally:
            self._applying = False
        self.simulate()

    def simulate(self) -> None:
        """Project the sliders' mix."""
        alloc = {n: float(s.value) for n, s in self.sliders.items()}
        try:
            sim = self.client.post("/api/simulate", json={"allocation": alloc})
        except ApiError as e:
            self.sim_cards.objects = [error_alert(e, "the projection")]
            return
        lift, rev = sim["lift"], sim["revenue"]
        spend = sim["spend"]
        self.sim_cards.objects = [
            kpi_card("Projected media revenue per day", money(rev["mean"]), key="sim-revenue"),
            kpi_card("Lift vs current per year", money(lift["per_year"], signed=True), key="sim-lift"),
            kpi_card("Daily spend", money(spend["per_day"]), key="sim-spend"),
            note("This is the current mix." if max(abs(lift["per_day_low"]), abs(lift["per_day_high"])) < 1e-9 else
                 interval(lift["per_year_low"], lift["per_year_high"]) + " per year; "
                 f"{lift['prob_positive']:.0%} chance the mix beats the current one."),
        ]


def page(client: ApiClient) -> pn.viewable.Viewable:
    """Build the optimizer page for one session."""
    try:
        return OptimizerPage(client).layout
    except (ApiError, KeyError, TypeError) as e:
        return pn.Column(error_alert(e, "the optimizer"))
