"""The look every Plotly figure shares, and the two rules for what enters one.

Figures are pure functions from rows to figure dicts in each app's `charts.py` (rendered by
static/js/charts.js); their colours, margins and fonts come from here so the pages match.

User text (class names from archive folders, run labels) enters a figure only escaped (`label`),
because Plotly renders a small HTML subset in ticks, legends and hover labels; it never enters a
hovertemplate, which is always a constant. Numbers enter through `number`: NaN and infinity are
not JSON and break the figure, so they become gaps.
"""
from __future__ import annotations

import math

BASE_LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 30, "b": 60},
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "#fbfcfd",
}
SPLIT_COLOURS = {"train": "#2f6fde", "val": "#f0a030", "test": "#3aa372"}
SCORE_COLOURS = {"precision": "#2f6fde", "recall": "#f0a030", "f1": "#3aa372"}
# Colour-blind-friendly and distinct on white (Tableau 10); runs beyond 8 reuse them in order.
RUN_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#9c755f", "#edc948"]
GAP_COLOUR, LR_COLOUR = "#8a5cc2", "#3aa372"
MARK_COLOUR = "#555"  # the best-epoch line
ALERT_COLOUR = "#b03030"  # overfitting, the suggested learning rate
OVERFIT_FILL = "rgba(220, 60, 60, 0.10)"


def label(text) -> str:
    """User text made inert for Plotly's HTML subset; Plotly shows &amp; &lt; &gt; as & < >."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def number(value) -> float | None:
    """A finite number as a float; None (a gap in the line) for anything else."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def positive(value) -> float | None:
    """`number`, and only above zero: what a log axis can place."""
    value = number(value)
    return value if value is not None and value > 0 else None
