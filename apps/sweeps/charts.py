"""Sweep charts as pure functions: a sweep's trials in, Plotly figure dicts out (no queries here).

A trial is a dict the page builds from a run and its record (`views.trial_rows`): number, run, params
(the values drawn, by config key), state (running, complete, pruned, failed), status, pruned, curve
({epoch: the sweep's metric}), epoch and epochs. `parameters` are the sweep's validated spaces.

Which parameter colours the trials is the reader's choice (`colour`): a numeric one gets a continuous
scale with a colourbar, on log10 when its space is logarithmic; a categorical one (or the trial's
state) one colour per value with a legend. Values drawn from a `values` list may be any JSON the
config takes (`{"run": 7}`, null): they enter figures as text through `label`, like every name.
"""
from __future__ import annotations

import json
import math
from typing import Any

from dlstudio.chart_style import BASE_LAYOUT, RUN_COLOURS, label, number

from .study import METRICS

STATE = "status"  # the colouring by the trial's state, offered beside the parameters
STATES = ["complete", "pruned", "running", "failed"]
STATE_COLOURS = {"complete": "#59a14f", "pruned": "#edc948", "running": "#4e79a7", "failed": "#e15759"}
METRIC_TITLES = {"val_acc": "validation accuracy", "val_loss": "validation loss", "train_acc": "train accuracy",
                 "train_loss": "train loss"}
SCALE = "Viridis"
# A list of positive numbers spanning this many times from its smallest to its largest is drawn on a log
# scale: a grid of learning rates 1e-5…1 would otherwise be five dots crowded at one end and one far away.
LOG_SPAN = 100
IMPORTANCE_MIN_TRIALS = 4  # study.importance says nothing with fewer finished trials


# --- what a parameter is ------------------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_numeric(space: dict) -> bool:
    if "values" in space:
        return all(_is_number(v) for v in space["values"])
    return True


def is_log(space: dict) -> bool:
    if "log_uniform" in space:
        return True
    values = space.get("values")
    if values and is_numeric(space) and min(values) > 0:
        return max(values) / min(values) >= LOG_SPAN
    return False


def text_of(value: Any) -> str:
    """A drawn value as a person reads it: 0.001, 1e-05, adam, run 7, none (plain text: a template escapes it)."""
    if value is None:
        return "none"
    if isinstance(value, dict) and set(value) == {"run"}:
        return f"run {value['run']}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if _is_number(value):
        return f"{value:.4g}"
    return json.dumps(value, sort_keys=True)


def shown(value: Any) -> str:
    """`text_of`, escaped for Plotly's HTML subset."""
    return label(text_of(value))


def colour_choices(parameters: dict[str, dict]) -> list[str]:
    return [*parameters, STATE]


def categories(parameters: dict[str, dict], key: str, trials: list[dict]) -> list[str]:
    """A categorical parameter's values as text, in the order the sweep gave them (then any others)."""
    if key == STATE:
        return STATES
    texts = [shown(v) for v in parameters.get(key, {}).get("values", [])]
    for trial in trials:
        text = shown(trial["params"].get(key))
        if text not in texts:
            texts.append(text)
    return list(dict.fromkeys(texts))


def _value(trial: dict, key: str):
    return trial["state"] if key == STATE else trial["params"].get(key)


def _scaled(value, log: bool) -> float | None:
    value = number(value)
    if value is None or (log and value <= 0):
        return None
    return math.log10(value) if log else value


def trial_value(trial: dict, metric: str) -> float | None:
    """The trial's best value of the metric (what Optuna compares), None before its first epoch."""
    values = [v for v in (number(x) for x in trial["curve"].values()) if v is not None]
    if not values:
        return None
    return max(values) if METRICS[metric] == "maximize" else min(values)


def _metric_axis(metric: str) -> dict:
    axis = {"title": {"text": METRIC_TITLES[metric]}}
    if metric.endswith("_acc"):
        # The whole of 0–100%: the axis stays put as trials arrive, and one point is not drawn at "150%".
        axis.update({"tickformat": ".0%", "range": [0, 1.02]})
    return axis


def _hover_format(metric: str) -> str:
    return ":.2%" if metric.endswith("_acc") else ":.4f"


def _decade_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks at whole powers of ten between lo and hi (log10 units), or the two ends when none fall in."""
    ticks = list(range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1))
    values = [float(t) for t in ticks] if ticks else [lo, hi]
    return values, [f"{10 ** v:.0e}".replace("e-0", "e-").replace("e+0", "e") for v in values]


# --- (a) every trial's curve, coloured by a parameter ---------------------------------------------------

def colouring(parameters: dict[str, dict], key: str, trials: list[dict]) -> dict:
    """How `key` colours the trials: {"kind": "scale", "colours": {number: css}, "bar": trace} or
    {"kind": "legend", "colours": {number: css}, "groups": {number: text}}."""
    space = parameters.get(key)
    if key != STATE and space is not None and is_numeric(space):
        log = is_log(space)
        scaled = {t["number"]: _scaled(_value(t, key), log) for t in trials}
        bounds = [v for v in scaled.values() if v is not None]
        ends = _space_ends(space, log)
        lo, hi = min(bounds + ends[:1]), max(bounds + ends[1:])
        colours = {n: _viridis((v - lo) / (hi - lo) if hi > lo else 0.5) if v is not None else "#999"
                   for n, v in scaled.items()}
        colorbar = {"title": {"text": label(key) + (" (log)" if log else ""), "side": "right"},
                    "thickness": 12, "len": 0.9}
        if log:
            colorbar["tickvals"], colorbar["ticktext"] = _decade_ticks(lo, hi)
        bar = {"type": "scatter", "mode": "markers", "x": [None], "y": [None], "showlegend": False,
               "hoverinfo": "skip", "name": "colour scale",
               "marker": {"color": [lo], "cmin": lo, "cmax": hi if hi > lo else lo + 1, "colorscale": SCALE,
                          "showscale": True, "size": 0, "colorbar": colorbar}}
        return {"kind": "scale", "colours": colours, "bar": bar, "log": log}
    texts = categories(parameters, key, trials)
    palette = STATE_COLOURS if key == STATE else {t: RUN_COLOURS[i % len(RUN_COLOURS)] for i, t in enumerate(texts)}
    groups = {t["number"]: (t["state"] if key == STATE else shown(_value(t, key))) for t in trials}
    return {"kind": "legend", "colours": {n: palette.get(g, "#999") for n, g in groups.items()}, "groups": groups,
            "order": texts}


def _space_ends(space: dict, log: bool) -> list[float]:
    """The space's own bounds, so a colour means the same value as trials arrive."""
    kind, spec = next(iter(space.items()))
    ends = [min(spec), max(spec)] if kind == "values" else list(spec)
    return [v for v in (_scaled(e, log) for e in ends) if v is not None]


# Viridis at nine stops: enough to interpolate a line's colour; a trace's line takes one CSS colour.
VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"]


def _viridis(t: float) -> str:
    t = min(1.0, max(0.0, t)) * (len(VIRIDIS) - 1)
    i = min(int(t), len(VIRIDIS) - 2)
    a, b = VIRIDIS[i], VIRIDIS[i + 1]
    mix = [round(int(a[k:k + 2], 16) + (int(b[k:k + 2], 16) - int(a[k:k + 2], 16)) * (t - i)) for k in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in mix)


def params_text(trial: dict) -> str:
    return ", ".join(f"{label(k)}={shown(v)}" for k, v in trial["params"].items())


def overlay_figure(parameters: dict[str, dict], trials: list[dict], *, metric: str, colour: str) -> dict:
    """One line per trial: the metric at each epoch, coloured by `colour`; a pruned trial dashed."""
    scheme = colouring(parameters, colour, trials)
    data, seen = [], set()
    for trial in sorted(trials, key=lambda t: t["number"]):
        epochs = sorted(trial["curve"])
        trace = {"type": "scatter", "mode": "lines+markers", "name": f"trial {trial['number']}",
                 "x": epochs, "y": [number(trial["curve"][e]) for e in epochs],
                 "line": {"color": scheme["colours"][trial["number"]], "width": 2,
                          "dash": "dash" if trial["pruned"] else "solid"},
                 "marker": {"size": 5}, "connectgaps": False, "showlegend": False,
                 "customdata": [[trial["number"], params_text(trial)]] * len(epochs),
                 "hovertemplate": "trial %{customdata[0]} · %{customdata[1]}<br>epoch %{x}: %{y"
                                  + _hover_format(metric) + "}<extra></extra>"}
        if scheme["kind"] == "legend":
            group = scheme["groups"][trial["number"]]
            trace["legendgroup"] = group
            trace["name"] = group
            if group not in seen:  # one legend entry per value, which shows or hides all its trials
                trace["showlegend"] = True
                trace["legendrank"] = scheme["order"].index(group) if group in scheme["order"] else 999
                seen.add(group)
        data.append(trace)
    x_axis = {"title": {"text": "epoch"}}
    if _short(trials):
        x_axis["dtick"] = 1  # whole epochs: Plotly would tick 0.5 steps on a short run
    layout = {**BASE_LAYOUT, "height": 380, "xaxis": x_axis,
              "yaxis": _metric_axis(metric), "hovermode": "closest", "uirevision": "overlay",
              "margin": {**BASE_LAYOUT["margin"], "t": 20}}
    if scheme["kind"] == "scale":
        data.append(scheme["bar"])
        layout["showlegend"] = False
        layout["margin"]["r"] = 90
    else:
        layout["showlegend"] = True
        layout["legend"] = {"title": {"text": label(colour)}, "orientation": "v", "x": 1.02, "y": 1}
    if not trials:
        layout["annotations"] = [_note("No trial has started yet.")]
    return {"data": data, "layout": layout}


def _short(trials: list[dict]) -> bool:
    return max((max(t["curve"], default=0) for t in trials), default=0) <= 12


def _note(text: str) -> dict:
    return {"text": text, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5, "showarrow": False,
            "font": {"size": 13, "color": "#5d6675"}}


# --- (b) parallel coordinates --------------------------------------------------------------------------

def parallel_figure(parameters: dict[str, dict], trials: list[dict], *, metric: str) -> dict:
    """One line per trial with a result, through each parameter's value to the metric."""
    scored = [(t, trial_value(t, metric)) for t in sorted(trials, key=lambda t: t["number"])]
    scored = [(t, v) for t, v in scored if v is not None]
    layout = {**BASE_LAYOUT, "height": 360, "margin": {"l": 70, "r": 70, "t": 50, "b": 30}}
    if not scored:
        return {"data": [], "layout": {**layout, "xaxis": {"visible": False}, "yaxis": {"visible": False},
                                       "annotations": [_note("No trial has a result yet.")]}}
    dimensions = []
    for key, space in parameters.items():
        if is_numeric(space):
            log = is_log(space)
            values = [_scaled(t["params"].get(key), log) for t, _ in scored]
            dimension = {"label": label(key) + (" (log)" if log else ""), "values": values}
            if log:
                present = [v for v in values if v is not None] or [0.0]
                dimension["tickvals"], dimension["ticktext"] = _decade_ticks(min(present), max(present))
        else:
            texts = categories(parameters, key, [t for t, _ in scored])
            dimension = {"label": label(key), "values": [texts.index(shown(t["params"].get(key))) for t, _ in scored],
                         "tickvals": list(range(len(texts))), "ticktext": texts,
                         "range": [-0.5, len(texts) - 0.5] if len(texts) > 1 else [-1, 1]}
        dimensions.append(dimension)
    values = [v for _, v in scored]
    dimensions.append({"label": METRIC_TITLES[metric], "values": values})
    trace = {"type": "parcoords", "dimensions": dimensions,
             "line": {"color": values, "colorscale": SCALE, "showscale": True,
                      "reversescale": METRICS[metric] == "minimize",
                      "colorbar": {"title": {"text": METRIC_TITLES[metric]}, "thickness": 12}},
             "labelfont": {"size": 12}, "tickfont": {"size": 11}}
    return {"data": [trace], "layout": layout}


# --- (c) the metric against each parameter -------------------------------------------------------------

def scatter_figure(parameters: dict[str, dict], trials: list[dict], *, metric: str) -> dict:
    """One small panel per parameter, side by side on a shared metric axis: dots for a numeric
    parameter (log x for a log space), a box with its points per value for a categorical one."""
    keys = list(parameters)
    scored = [(t, trial_value(t, metric)) for t in sorted(trials, key=lambda t: t["number"])]
    scored = [(t, v) for t, v in scored if v is not None]
    gap = 0.06 if len(keys) > 1 else 0.0
    width = (1 - gap * (len(keys) - 1)) / len(keys)
    data = []
    layout = {**BASE_LAYOUT, "height": 320, "showlegend": False, "hovermode": "closest",
              "yaxis": _metric_axis(metric), "margin": {**BASE_LAYOUT["margin"], "l": 60, "t": 20}}
    for i, key in enumerate(keys):
        axis = "x" if i == 0 else f"x{i + 1}"
        name = "xaxis" if i == 0 else f"xaxis{i + 1}"
        space = parameters[key]
        x_axis = {"domain": [i * (width + gap), i * (width + gap) + width], "anchor": "y",
                  "title": {"text": label(key)}, "automargin": True}
        symbols = ["circle-open" if t["pruned"] else "circle" for t, _ in scored]
        customdata = [[t["number"], params_text(t)] for t, _ in scored]
        hover = ("trial %{customdata[0]} · %{customdata[1]}<br>" + METRIC_TITLES[metric]
                 + " %{y" + _hover_format(metric) + "}<extra></extra>")
        if is_numeric(space):
            log = is_log(space)
            xs = [number(t["params"].get(key)) for t, _ in scored]
            ends = _space_ends(space, log)
            if len(ends) == 2 and ends[1] > ends[0]:  # the whole space, so a lone trial is not drawn as its range
                pad = (ends[1] - ends[0]) * 0.05
                x_axis["range"] = [ends[0] - pad, ends[1] + pad]
            if log:
                x_axis.update({"type": "log", "exponentformat": "power"})
            data.append({"type": "scatter", "mode": "markers", "xaxis": axis, "yaxis": "y", "name": label(key),
                         "x": xs, "y": [v for _, v in scored], "customdata": customdata, "hovertemplate": hover,
                         "marker": {"size": 9, "color": "#4e79a7", "symbol": symbols, "line": {"width": 1.5}}})
        else:
            texts = categories(parameters, key, [t for t, _ in scored])
            x_axis.update({"type": "category", "categoryorder": "array", "categoryarray": texts})
            data.append({"type": "box", "xaxis": axis, "yaxis": "y", "name": label(key),
                         "x": [shown(t["params"].get(key)) for t, _ in scored], "y": [v for _, v in scored],
                         "boxpoints": "all", "jitter": 0.3, "pointpos": 0, "customdata": customdata,
                         "hovertemplate": hover, "fillcolor": "rgba(78,121,167,0.15)",
                         "line": {"color": "#4e79a7", "width": 1}, "marker": {"size": 7, "color": "#4e79a7"}})
        layout[name] = x_axis
    if not scored:
        layout["annotations"] = [_note("No trial has a result yet.")]
    return {"data": data, "layout": layout}


# --- (d) which parameters mattered ---------------------------------------------------------------------

def importance_figure(importance: dict[str, float] | None, *, finished: int) -> dict:
    """Each parameter's importance as Optuna rates it (the shares sum to 1), largest on top; a sentence
    saying what is missing until there are enough finished trials to say."""
    if not importance:
        layout = {**BASE_LAYOUT, "height": 160, "xaxis": {"visible": False}, "yaxis": {"visible": False},
                  "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
                  "annotations": [_note(
                      f"Parameter importance needs at least {IMPORTANCE_MIN_TRIALS} finished trials<br>"
                      f"that differ in a parameter ({finished} finished so far).")]}
        return {"data": [], "layout": layout}
    ranked = sorted(importance.items(), key=lambda kv: kv[1])  # Plotly draws the first bar at the bottom
    trace = {"type": "bar", "orientation": "h", "x": [number(v) for _, v in ranked],
             "y": [label(k) for k, _ in ranked], "marker": {"color": "#4e79a7"},
             "hovertemplate": "%{y}: %{x:.0%} of the importance<extra></extra>"}
    layout = {**BASE_LAYOUT, "height": 120 + 34 * len(ranked),
              "xaxis": {"title": {"text": "relative importance (the shares sum to 100%)"}, "tickformat": ".0%",
                        "range": [0, 1]},
              "yaxis": {"automargin": True, "type": "category"}, "margin": {**BASE_LAYOUT["margin"], "t": 10}}
    return {"data": [trace], "layout": layout}


# --- (e) progress ----------------------------------------------------------------------------------------

def progress(trials: list[dict], *, total: int, default_epochs: int, seconds: list[float]) -> dict:
    """What the page says of progress: trials by state, epochs trained against the budget, and an ETA.

    The budget counts an ended trial at the epochs it trained (a pruned or failed trial will train no
    more), a queued or running one at its planned epochs, and a trial not started yet at the
    experiment's. The ETA is the epochs left times the mean seconds per epoch so far, shared by the
    trials running now (how many train at once depends on the workers, not only on max_parallel).
    """
    counts = {"done": 0, "running": 0, "queued": 0, "pruned": 0, "failed": 0}
    trained = budget = 0
    for trial in trials:
        status = trial["status"]
        if status in ("queued", "running"):
            counts[status] += 1
            budget += max(trial["epochs"], trial["epoch"])
        else:
            budget += trial["epoch"]
            if status == "succeeded":
                counts["pruned" if trial["pruned"] else "done"] += 1
            else:
                counts["failed"] += 1  # cancelled too: it gave no result
        trained += trial["epoch"]
    budget += default_epochs * max(0, total - len(trials))
    times = [s for s in (number(x) for x in seconds) if s is not None and s >= 0]
    left = max(0, budget - trained)
    eta = None
    if times and left and counts["running"] + counts["queued"]:
        eta = left * (sum(times) / len(times)) / max(1, counts["running"])
    return {**counts, "total": total, "ended": counts["done"] + counts["pruned"] + counts["failed"],
            "epochs_trained": trained, "epochs_budget": budget,
            "fraction": (trained / budget) if budget else 0.0, "eta_seconds": eta}


def figures(parameters: dict[str, dict], trials: list[dict], *, metric: str, colour: str,
            importance: dict[str, float] | None) -> dict:
    """Every figure of the sweep page, by the id the page draws it in."""
    finished = sum(t["state"] == "complete" for t in trials)
    return {"overlay": overlay_figure(parameters, trials, metric=metric, colour=colour),
            "parallel": parallel_figure(parameters, trials, metric=metric),
            "scatter": scatter_figure(parameters, trials, metric=metric),
            "importance": importance_figure(importance, finished=finished)}
