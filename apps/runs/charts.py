"""Run charts as pure functions: rows in, Plotly figure dicts out (rendered by static/js/charts.js).

The live figures (loss, accuracy, gap, lr) are grown on the run page with `Plotly.extendTraces`
from `/api/runs/<id>/metrics?after=N`, so their trace order is a contract with the page:
LIVE_TRACES names, per figure and in trace order, the series each trace holds (`gap` is
train_acc - val_acc). `live_update` builds exactly that update from new rows.

Class names and run labels are user input: they enter figures through `label`, numbers through
`number` (dlstudio/chart_style.py says why).
"""
from __future__ import annotations

from dlstudio.chart_style import (
    ALERT_COLOUR, BASE_LAYOUT, GAP_COLOUR, LR_COLOUR, MARK_COLOUR, OVERFIT_FILL, RUN_COLOURS, SCORE_COLOURS,
    SPLIT_COLOURS, label, number, positive,
)

LIVE_TRACES = {"loss": ["train_loss", "val_loss"], "accuracy": ["train_acc", "val_acc"],
               "gap": ["gap"], "lr": ["lr"]}
TRACE_NAMES = {"train_loss": "train", "val_loss": "validation", "train_acc": "train", "val_acc": "validation",
               "gap": "train − validation", "lr": "learning rate"}
COLOURS = {"train_loss": SPLIT_COLOURS["train"], "val_loss": SPLIT_COLOURS["val"],
           "train_acc": SPLIT_COLOURS["train"], "val_acc": SPLIT_COLOURS["val"], "gap": GAP_COLOUR, "lr": LR_COLOUR}
# Hover is "x unified": Plotly heads the box with the epoch, each trace adds one line.
HOVER = {"train_loss": "train %{y:.4f}<extra></extra>", "val_loss": "validation %{y:.4f}<extra></extra>",
         "train_acc": "train %{y:.2%}<extra></extra>", "val_acc": "validation %{y:.2%}<extra></extra>",
         "gap": "gap %{y:.2%}<extra></extra>", "lr": "learning rate %{y:.3e}<extra></extra>"}
CONFUSION_TEXT_MAX = 30  # above this many classes the cell counts are unreadable: hover only


def series(row: dict, key: str) -> float | None:
    """One value of a live series; None (a gap in the line) for missing or non-finite numbers,
    which also keeps the figure valid JSON."""
    if key == "gap":
        train, val = series(row, "train_acc"), series(row, "val_acc")
        return None if train is None or val is None else train - val
    return positive(row.get(key)) if key == "lr" else number(row.get(key))  # the lr is drawn on a log axis


def live_update(metrics: list[dict], figures=tuple(LIVE_TRACES)) -> dict:
    """{figure: {"x": [[...] per trace], "y": [[...] per trace]}}: the arguments extendTraces needs
    for the rows of `metrics`, in LIVE_TRACES order."""
    epochs = [row["epoch"] for row in metrics]
    return {name: {"x": [list(epochs) for _ in LIVE_TRACES[name]],
                   "y": [[series(row, key) for row in metrics] for key in LIVE_TRACES[name]]}
            for name in figures}


def overlays(*, best_epoch: int | None = None, diagnosis: dict | None = None,
             last_epoch: int | None = None) -> dict:
    """The shapes and annotations of the best-epoch line and the overfitting region, for a
    figure's layout (or for Plotly.relayout when the page learns a new diagnosis)."""
    shapes, annotations = [], []
    since = (diagnosis or {}).get("since_epoch") if (diagnosis or {}).get("overfitting") else None
    if since is not None:
        end = max(since, last_epoch if last_epoch is not None else since)
        shapes.append({"type": "rect", "name": "overfitting", "xref": "x", "yref": "paper", "x0": since, "x1": end,
                       "y0": 0, "y1": 1, "fillcolor": OVERFIT_FILL, "line": {"width": 0}, "layer": "below"})
        annotations.append({"name": "overfitting", "x": since, "xref": "x", "xanchor": "left", "y": 1,
                            "yref": "paper", "yanchor": "top", "text": "overfitting", "showarrow": False,
                            "font": {"color": ALERT_COLOUR, "size": 11}})
    if best_epoch is not None:
        shapes.append({"type": "line", "name": "best_epoch", "xref": "x", "yref": "paper", "x0": best_epoch,
                       "x1": best_epoch, "y0": 0, "y1": 1, "line": {"color": MARK_COLOUR, "width": 1, "dash": "dash"}})
        # Inside the plot's top edge: above it is where the legend sits.
        annotations.append({"name": "best_epoch", "x": best_epoch, "xref": "x", "y": 1, "yref": "paper",
                            "yanchor": "top", "xanchor": "left", "xshift": 3,
                            "text": f"best epoch {int(best_epoch)}", "showarrow": False,
                            "font": {"color": MARK_COLOUR, "size": 11}})
    return {"shapes": shapes, "annotations": annotations}


def _live_figure(name: str, metrics: list[dict], *, y_title: str, best_epoch=None, diagnosis=None,
                 yaxis: dict | None = None) -> dict:
    update = live_update(metrics, (name,))[name]
    data = [{"type": "scatter", "mode": "lines+markers", "name": TRACE_NAMES[key], "x": x, "y": y,
             "line": {"color": COLOURS[key], "width": 2}, "marker": {"size": 5}, "connectgaps": False,
             "hovertemplate": HOVER[key]}
            for key, x, y in zip(LIVE_TRACES[name], update["x"], update["y"])]
    last = metrics[-1]["epoch"] if metrics else None
    layout = {**BASE_LAYOUT, **overlays(best_epoch=best_epoch, diagnosis=diagnosis, last_epoch=last),
              "xaxis": {"title": {"text": "epoch"}},
              "yaxis": {"title": {"text": y_title}, **(yaxis or {})},
              "legend": {"orientation": "h", "y": 1.15}, "hovermode": "x unified", "uirevision": name}
    return {"data": data, "layout": layout}


def loss_figure(metrics: list[dict], *, best_epoch: int | None = None, diagnosis: dict | None = None) -> dict:
    return _live_figure("loss", metrics, y_title="loss", best_epoch=best_epoch, diagnosis=diagnosis)


def accuracy_figure(metrics: list[dict], *, best_epoch: int | None = None, diagnosis: dict | None = None) -> dict:
    return _live_figure("accuracy", metrics, y_title="accuracy", best_epoch=best_epoch, diagnosis=diagnosis,
                        yaxis={"tickformat": ".0%", "range": [0, 1.02]})


def gap_figure(metrics: list[dict], *, best_epoch: int | None = None, diagnosis: dict | None = None) -> dict:
    """train_acc - val_acc: near zero generalises, a gap that keeps widening is memorisation."""
    return _live_figure("gap", metrics, y_title="train − validation accuracy", best_epoch=best_epoch,
                        diagnosis=diagnosis, yaxis={"tickformat": ".0%", "zeroline": True})


def lr_figure(metrics: list[dict]) -> dict:
    return _live_figure("lr", metrics, y_title="learning rate",
                        yaxis={"type": "log", "exponentformat": "power"})


def confusion_figure(classes: list[str], confusion: list[list[int]]) -> dict:
    """Rows are true classes (first at the top), columns predicted; colour is the share of the
    true class, so small classes' mistakes show as clearly as large ones'; text is the count."""
    names = [label(c) for c in classes]
    shares = [[n / (sum(row) or 1) for n in row] for row in confusion]
    many = len(classes) > CONFUSION_TEXT_MAX
    trace = {"type": "heatmap", "x": names, "y": names, "z": shares, "zmin": 0, "zmax": 1,
             "text": [[str(n) for n in row] for row in confusion],
             "colorscale": [[0, "#f5f8fc"], [0.5, "#7ea6d8"], [1, "#1f4fa8"]],
             "colorbar": {"title": {"text": "share of true class"}, "tickformat": ".0%"}, "xgap": 1, "ygap": 1,
             "hovertemplate": "true: %{y}<br>predicted: %{x}<br>%{text} images (%{z:.1%})<extra></extra>"}
    if not many:
        trace["texttemplate"] = "%{text}"
    axis = {"type": "category", "categoryorder": "array", "categoryarray": names, "automargin": True}
    size = max(420, min(1400, 160 + 22 * len(classes)))
    layout = {**BASE_LAYOUT, "height": size,
              "xaxis": {**axis, "title": {"text": "predicted"}, "tickangle": -45, "side": "bottom"},
              "yaxis": {**axis, "title": {"text": "true"}, "autorange": "reversed"}}
    return {"data": [trace], "layout": layout}


def per_class_figure(per_class: list[dict]) -> dict:
    names = [label(row["class"]) for row in per_class]
    support = [row.get("support") for row in per_class]
    data = [{"type": "bar", "name": metric, "x": names, "y": [series(row, metric) for row in per_class],
             "customdata": support, "marker": {"color": colour},
             "hovertemplate": "%{x}<br>" + metric + " %{y:.3f}<br>support %{customdata}<extra></extra>"}
            for metric, colour in SCORE_COLOURS.items()]
    layout = {**BASE_LAYOUT, "barmode": "group",
              "xaxis": {"type": "category", "title": {"text": "class"}, "automargin": True},
              "yaxis": {"title": {"text": "score"}, "range": [0, 1.05]}, "legend": {"orientation": "h", "y": 1.12}}
    return {"data": data, "layout": layout}


def compare_figures(runs: list[dict]) -> dict:
    """{"loss": fig, "accuracy": fig}: each run one colour, train dashed, validation solid."""
    figures = {}
    for name, keys, y_axis in (("loss", ("train_loss", "val_loss"), {}),
                               ("accuracy", ("train_acc", "val_acc"), {"tickformat": ".0%"})):
        data = []
        for i, run in enumerate(runs):
            colour, group = RUN_COLOURS[i % len(RUN_COLOURS)], f"run{i}"
            for key in keys:
                train = key.startswith("train")
                data.append({"type": "scatter", "mode": "lines", "legendgroup": group,
                             "name": f"{label(run['label'])} · {'train' if train else 'validation'}",
                             "x": [row["epoch"] for row in run["metrics"]],
                             "y": [series(row, key) for row in run["metrics"]],
                             "line": {"color": colour, "width": 2, "dash": "dash" if train else "solid"},
                             "hovertemplate": "epoch %{x}: %{y:.4f}"})
        figures[name] = {"data": data, "layout": {
            **BASE_LAYOUT, "xaxis": {"title": {"text": "epoch"}},
            "yaxis": {"title": {"text": name}, **y_axis}, "hovermode": "closest",
            # Below the axis title, with room made for it: one row per run fits up to 8 runs.
            "legend": {"orientation": "h", "y": -0.25, "yanchor": "top"},
            "margin": {**BASE_LAYOUT["margin"], "b": 60 + 22 * len(runs)}, "height": 360 + 22 * len(runs)}}
    return figures
