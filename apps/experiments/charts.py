"""The LR finder's chart as a pure function: the range test's points in, a Plotly figure dict out."""
from __future__ import annotations

import math

from dlstudio.chart_style import ALERT_COLOUR, BASE_LAYOUT, SPLIT_COLOURS, number, positive


def lr_finder_figure(lrs: list[float], losses: list[float], suggested_lr: float | None) -> dict:
    """Loss against the learning rate of the range test; the suggestion is where loss falls fastest."""
    points = [(lr, number(loss)) for lr, loss in zip(lrs, losses) if positive(lr) is not None]
    data = [{"type": "scatter", "mode": "lines", "name": "loss", "x": [lr for lr, _ in points],
             "y": [loss for _, loss in points], "line": {"color": SPLIT_COLOURS["train"]},
             "hovertemplate": "learning rate %{x:.2e}<br>loss %{y:.4f}<extra></extra>"}]
    shapes, annotations = [], []
    if positive(suggested_lr) is not None:
        # On a log axis shapes take data values but annotations take log10 of them.
        shapes.append({"type": "line", "name": "suggested_lr", "xref": "x", "yref": "paper", "x0": suggested_lr,
                       "x1": suggested_lr, "y0": 0, "y1": 1, "line": {"color": ALERT_COLOUR, "dash": "dash"}})
        annotations.append({"name": "suggested_lr", "x": math.log10(suggested_lr), "xref": "x", "y": 1,
                            "yref": "paper", "yanchor": "bottom", "showarrow": False,
                            "text": f"suggested {suggested_lr:.1e}", "font": {"color": ALERT_COLOUR}})
    layout = {**BASE_LAYOUT, "shapes": shapes, "annotations": annotations,
              "xaxis": {"type": "log", "title": {"text": "learning rate"}, "exponentformat": "power"},
              "yaxis": {"title": {"text": "loss"}}, "showlegend": False}
    return {"data": data, "layout": layout}
