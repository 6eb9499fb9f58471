"""The churn model cards of the Customer Insights page: what each model predicts, what it was trained on, how it did
out of time against simple baselines, and whether its probabilities can be taken at face value (the reliability
table). Plain labels first, the statistic's name in brackets. Every figure comes from the API's model card.
"""

from __future__ import annotations

import html
from typing import Any

import panel as pn

from dashboard.format import DASH, day, decimal, money, number, ratio, share

__all__ = ["SCORER_LABELS", "METRICS", "CHURN_TARGETS", "model_title", "target_words", "model_targets", "facts_html",
           "evaluation_html", "calibration_html", "calibration_chart", "model_card_html", "model_message_html",
           "ltv_check_html", "MODELS_CSS"]

BLUE, GREY = "#2f6fde", "#8a94a0"
SCORER_LABELS = {"model": "Churn model", "days_since_last_order": "Baseline: days since the last order",
                 "rfm_logistic": "Baseline: recency, frequency and spend (RFM)"}
#: (key in the metrics, plain label, what it means, formatter)
METRICS: list[tuple[str, str, str, Any]] = [
    ("roc_auc", "Ranking quality (AUC)",
     "the chance that a customer who churned was scored above one who stayed: 0.5 is a coin flip, 1 is perfect",
     decimal),
    ("pr_auc", "Precision on churners (PR-AUC)",
     "how well the highest scores pick out the churners; compare it with the churn rate", decimal),
    ("brier", "Probability error (Brier score)",
     "the average squared gap between the predicted chance and what happened: lower is better",
     lambda x: decimal(x, 3)),
    ("top_decile_lift", "Top-10% lift",
     "the churn rate among the 10% scored riskiest, as a multiple of the overall churn rate", ratio),
]


def model_title(target: str) -> str:
    """``Purchase churn model``."""
    return f"{target.replace('_', ' ').capitalize()} churn model"


def target_words(target: str, horizon_days: Any) -> str:
    """What the model predicts, in words."""
    h = f"{horizon_days} days" if horizon_days else "the coming period"
    if target == "purchase":
        return f"Predicts which customers who have ordered before place no order in the next {h}."
    if target == "subscription":
        return f"Predicts which active subscribers cancel their subscription within the next {h}."
    return f"Predicts churn ({html.escape(target)}) within the next {h}."


CHURN_TARGETS = ("purchase", "subscription")


def model_targets(models: dict[str, Any]) -> list[str]:
    """The churn targets the API reports on, with a card or a message, in its order (the lifetime value and
    retention models beside them are not churn cards)."""
    messages = models.get("messages") or {}
    cards = [k for k, v in models.items() if k in CHURN_TARGETS or (isinstance(v, dict) and "evaluation" in v)]
    return cards + [k for k in CHURN_TARGETS if k in messages and k not in cards]


def facts_html(card: dict[str, Any]) -> str:
    """Trained when, on what, and the base rate."""
    facts = [("Target", f"{card.get('target')} churn within {card.get('horizon_days')} days"),
             ("Trained", day(card.get("trained_at"))),
             ("Trained on data up to", day(card.get("training_cutoff"))),
             ("Scores customers as of", day(card.get("scoring_cutoff"))),
             ("Tested on what happened after", day(card.get("evaluation_cutoff"))),
             ("Training customers", number(card.get("n_train"))),
             ("Of whom churned", number(card.get("positives_train"))),
             ("Churn rate in training (base rate)", share(card.get("base_rate_train"))),
             ("Probabilities calibrated by", str(card.get("calibration_method") or DASH))]
    cells = "".join(f'<div class="gl-model-fact"><div class="t">{html.escape(t)}</div><div class="v">'
                    f"{html.escape(v)}</div></div>" for t, v in facts)
    return f'<div class="gl-model-facts">{cells}</div>'


def _scorers(evaluation: dict[str, Any]) -> list[str]:
    return (["model"] if "model" in evaluation else []) + [k for k in evaluation if k != "model"]


def scorer_label(key: str) -> str:
    """``Baseline: days since the last order``."""
    return SCORER_LABELS.get(key) or f"Baseline: {key.replace('_', ' ')}"


def evaluation_html(evaluation: dict[str, Any]) -> str:
    """One row per scorer (the model, then each baseline), one column per quality measure."""
    if not evaluation:
        return '<div class="gl-note">No out-of-time evaluation is available.</div>'
    head = ("<tr><th>Scored by</th><th class='num'>Customers tested</th><th class='num'>Churn rate</th>" +
            "".join(f"<th class='num' title='{html.escape(why)}'>{html.escape(label)}</th>"
                    for _k, label, why, _f in METRICS) + "</tr>")
    rows = []
    for key in _scorers(evaluation):
        m = evaluation[key] or {}
        cls = "gl-eval-model" if key == "model" else "gl-eval-baseline"
        rows.append(f'<tr class="{cls} gl-eval-{html.escape(key)}"><td>{html.escape(scorer_label(key))}</td>'
                    f'<td class="num">{number(m.get("n"))}</td><td class="num">{share(m.get("base_rate"))}</td>' +
                    "".join(f'<td class="num gl-metric-{k}">{fmt(m.get(k))}</td>' for k, _l, _w, fmt in METRICS) +
                    "</tr>")
    ref = (evaluation.get("model") or {}).get("brier_base_rate")
    notes = "".join(f"<li><b>{html.escape(label)}</b>: {html.escape(why)}.</li>" for _k, label, why, _f in METRICS)
    if ref is not None:
        notes += (f"<li>Always guessing the churn rate would give a probability error of {decimal(ref, 3)}; a useful "
                  "model does better.</li>")
    return (f"<table class='gl-table gl-model-eval'>{head}{''.join(rows)}</table>"
            f'<ul class="gl-note gl-model-notes">{notes}</ul>')


def calibration_html(bins: list[dict[str, Any]]) -> str:
    """Predicted vs observed churn for each tenth of customers ranked by predicted risk."""
    if not bins:
        return '<div class="gl-note">No reliability table.</div>'
    rows = "".join(
        f'<tr><td>{html.escape(str(b.get("bin")))}</td><td class="num">{share(b.get("lo"))}–{share(b.get("hi"))}</td>'
        f'<td class="num">{number(b.get("n"))}</td><td class="num gl-cal-predicted">{share(b.get("predicted"))}</td>'
        f'<td class="num gl-cal-observed">{share(b.get("observed"))}</td></tr>' for b in bins)
    head = ("<tr><th>Tenth (by risk)</th><th class='num'>Scores</th><th class='num'>Customers</th>"
            "<th class='num'>Predicted churn</th><th class='num'>Actual churn</th></tr>")
    return f"<table class='gl-table gl-calibration'>{head}{rows}</table>"


def calibration_chart(bins: list[dict[str, Any]]) -> pn.viewable.Viewable:
    """Predicted against actual churn per tenth, with the diagonal of perfectly calibrated probabilities."""
    import holoviews as hv

    hv.extension("bokeh", logo=False)
    pts = [(100 * float(b["predicted"]), 100 * float(b["observed"])) for b in bins
           if b.get("predicted") is not None and b.get("observed") is not None]
    top = max([100.0 * 0.05, *(max(p) for p in pts)]) * 1.05 if pts else 100.0
    ideal = hv.Curve([(0, 0), (top, top)], "Predicted churn (%)", "Actual churn (%)",
                     label="perfectly calibrated").opts(color=GREY, line_dash="dashed")
    model = hv.Curve(pts, "Predicted churn (%)", "Actual churn (%)", label="model").opts(color=BLUE)
    dots = hv.Scatter(pts, "Predicted churn (%)", "Actual churn (%)").opts(color=BLUE, size=6, tools=["hover"])
    plot = (ideal * model * dots).opts(height=260, responsive=True, legend_position="top_left",
                                       title="Predicted vs actual churn, per tenth", xlim=(0, top), ylim=(0, top))
    return pn.pane.HoloViews(plot, sizing_mode="stretch_width", min_height=260, linked_axes=False)


def model_card_html(target: str, card: dict[str, Any]) -> str:
    """Title, what it predicts, the facts and the evaluation table (the reliability table goes beside its chart)."""
    return (f'<div class="gl-model-title">{html.escape(model_title(target))}</div>'
            f'<div class="gl-model-what">{html.escape(target_words(target, card.get("horizon_days")))}</div>'
            f"{facts_html(card)}"
            f'<div class="gl-model-sub">How well it did on customers it had not seen, against simple rules</div>'
            f"{evaluation_html(card.get('evaluation') or {})}")


def model_message_html(target: str, message: str | None) -> str:
    """Why there is no model for a target (the API's own words)."""
    text = message or "No model has been trained for this target."
    return (f'<div class="gl-model-title">{html.escape(model_title(target))}</div>'
            f'<div class="gl-model-missing">{html.escape(text)}</div>')


def ltv_check_html(ltv: dict[str, Any] | None, message: str | None = None) -> str:
    """How the predicted-value model did on a held-out period: predicted vs actual purchases and revenue, and its
    per-customer error beside the naive rule "as many orders as before"."""
    title = '<div class="gl-model-title">Predicted-value model (purchases and spend)</div>'
    if not ltv:
        text = message or "No predicted-value model has been fitted."
        return f'{title}<div class="gl-model-missing">{html.escape(text)}</div>'
    h = ltv.get("holdout") or {}
    horizon = f"the next {ltv['horizon_days']} days" if ltv.get("horizon_days") else "the coming months"
    intro = f'<div class="gl-model-what">Predicts each customer\'s purchases and spend over {horizon}.</div>'
    if not h:
        return f'{title}{intro}<div class="gl-note">{html.escape(message or "No holdout check is available.")}</div>'
    rows = [("Purchases", number(h.get("predicted_purchases")), number(h.get("actual_purchases")),
             number(h.get("naive_purchases"))),
            ("Revenue", money(h.get("predicted_revenue")), money(h.get("actual_revenue")), DASH),
            ("Error per customer, purchases (MAE)", decimal(h.get("mae")), DASH, decimal(h.get("naive_mae")))]
    body = "".join(f'<tr><td>{t}</td><td class="num">{a}</td><td class="num">{b}</td><td class="num">{c}</td></tr>'
                   for t, a, b, c in rows)
    since = f" after {day(h['cutoff'])}" if h.get("cutoff") else ""
    days = f"the {h['horizon_days']} days" if h.get("horizon_days") else "a period"
    return (f"{title}{intro}<div class='gl-model-sub'>Check on {days}{html.escape(since)}, held out "
            f"({number(h.get('customers'))} customers)</div><table class='gl-table gl-ltv-check'><tr><th></th>"
            "<th class='num'>Predicted</th><th class='num'>Actual</th><th class='num'>Naive rule (same pace as "
            f"before)</th></tr>{body}</table>")


MODELS_CSS = """
.gl-model {border: 1px solid #e3e6ea; border-radius: 10px; padding: 12px 16px; margin: 6px 5px; background: #fff;}
.gl-model-title {font-size: 18px; font-weight: 650; color: #1d2733;}
.gl-model-what {color: #3d4753; font-size: 14px; margin: 2px 0 8px 0;}
.gl-model-facts {display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 8px;
                 margin-bottom: 10px;}
.gl-model-fact .t {font-size: 12px; color: #5f6b7a;}
.gl-model-fact .v {font-size: 15px; font-weight: 600; color: #1d2733;}
.gl-model-sub {font-size: 14px; font-weight: 600; color: #1d2733; margin: 6px 0 4px 0;}
.gl-model-eval tr.gl-eval-model td {font-weight: 650;}
.gl-model-notes {padding-left: 18px; margin: 6px 0;}
.gl-model-missing {color: #9a6700; background: #fff4d6; border-radius: 8px; padding: 8px 12px; font-size: 14px;
                   margin-top: 6px;}
"""
