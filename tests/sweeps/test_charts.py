"""The sweep charts are pure functions of the trials: how they colour, which axes are logarithmic, what a
pruned trial looks like, and what the figures say before there is anything to show."""
import json

from apps.sweeps import charts

LOG = {"lr": {"log_uniform": [1e-4, 1e-1]}, "optimizer": {"values": ["sgd", "adam"]}}


def trial(number, params, curve, *, state="complete", status="succeeded", pruned=False, epoch=None, epochs=3):
    return {"number": number, "run": 100 + number, "params": params, "state": state, "status": status,
            "pruned": pruned, "curve": curve, "epoch": len(curve) if epoch is None else epoch, "epochs": epochs}


TRIALS = [
    trial(0, {"lr": 1e-4, "optimizer": "sgd"}, {1: 0.5, 2: 0.6, 3: 0.62}),
    trial(1, {"lr": 1e-2, "optimizer": "adam"}, {1: 0.7, 2: 0.8, 3: 0.9}),
    trial(2, {"lr": 1e-1, "optimizer": "sgd"}, {1: 0.4}, state="pruned", pruned=True, epoch=1),
    trial(3, {"lr": 3e-3, "optimizer": "<b>adam</b>"}, {1: 0.55}, state="running", status="running"),
]


def lines(figure):
    return [t for t in figure["data"] if t.get("mode") == "lines+markers"]


def test_a_numeric_parameter_colours_on_a_continuous_scale_with_a_colourbar():
    figure = charts.overlay_figure(LOG, TRIALS, metric="val_acc", colour="lr")
    assert len(lines(figure)) == 4 and not any(t["showlegend"] for t in lines(figure))
    bar = [t for t in figure["data"] if t.get("marker", {}).get("showscale")]
    assert len(bar) == 1 and bar[0]["marker"]["colorbar"]["title"]["text"] == "lr (log)"
    # Coloured by log10(lr) over the space's own bounds: 1e-4 is one end of the scale, 1e-1 the other.
    assert bar[0]["marker"]["cmin"] == -4 and bar[0]["marker"]["cmax"] == -1
    assert bar[0]["marker"]["colorbar"]["ticktext"] == ["1e-4", "1e-3", "1e-2", "1e-1"]
    colours = [t["line"]["color"] for t in lines(figure)]
    assert colours[0] == charts.VIRIDIS[0] and colours[2] == charts.VIRIDIS[-1]
    assert len(set(colours)) == 4
    assert figure["layout"]["showlegend"] is False


def test_a_categorical_parameter_gets_one_colour_per_value_and_a_legend():
    figure = charts.overlay_figure(LOG, TRIALS, metric="val_acc", colour="optimizer")
    traces = lines(figure)
    assert not [t for t in figure["data"] if t.get("marker", {}).get("showscale")]
    assert figure["layout"]["showlegend"] is True and figure["layout"]["legend"]["title"]["text"] == "optimizer"
    by_value = {}
    for t in traces:
        by_value.setdefault(t["legendgroup"], set()).add(t["line"]["color"])
    assert all(len(c) == 1 for c in by_value.values()) and len({c.pop() for c in by_value.values()}) == 3
    assert sum(t["showlegend"] for t in traces) == 3  # one entry per value, not per trial
    # A value is user text: it enters the figure escaped.
    assert "&lt;b&gt;adam&lt;/b&gt;" in by_value and "<b>" not in json.dumps(figure)


def test_status_colours_by_the_trials_state():
    figure = charts.overlay_figure(LOG, TRIALS, metric="val_acc", colour="status")
    assert figure["layout"]["legend"]["title"]["text"] == "status"
    assert {t["legendgroup"]: t["line"]["color"] for t in lines(figure)} == {
        s: charts.STATE_COLOURS[s] for s in ("complete", "pruned", "running")}
    assert "status" in charts.colour_choices(LOG)


def test_pruned_trials_are_dashed():
    figure = charts.overlay_figure(LOG, TRIALS, metric="val_acc", colour="lr")
    assert [t["line"]["dash"] for t in lines(figure)] == ["solid", "solid", "dash", "solid"]
    assert lines(figure)[1]["x"] == [1, 2, 3] and lines(figure)[1]["y"] == [0.7, 0.8, 0.9]
    assert figure["layout"]["yaxis"]["tickformat"] == ".0%"


def test_a_wide_list_of_learning_rates_is_drawn_on_a_log_scale():
    grid = {"lr": {"values": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]}}
    trials = [trial(i, {"lr": lr}, {1: 0.5 + i / 20}) for i, lr in enumerate(grid["lr"]["values"])]
    assert charts.is_log(grid["lr"]) and not charts.is_log({"values": [0.1, 0.5]})
    assert charts.overlay_figure(grid, trials, metric="val_acc", colour="lr")["data"][-1]["marker"]["cmin"] == -5
    assert charts.scatter_figure(grid, trials, metric="val_acc")["layout"]["xaxis"]["type"] == "log"


def test_the_scatter_has_a_log_axis_for_a_log_space_and_a_box_per_value_for_a_categorical_one():
    figure = charts.scatter_figure(LOG, TRIALS, metric="val_acc")
    layout = figure["layout"]
    assert layout["xaxis"]["type"] == "log" and layout["xaxis"]["title"]["text"] == "lr"
    assert layout["xaxis2"]["type"] == "category" and layout["xaxis2"]["title"]["text"] == "optimizer"
    assert layout["xaxis"]["domain"][1] < layout["xaxis2"]["domain"][0]  # side by side, not overlapping
    scatter, box = figure["data"]
    assert scatter["type"] == "scatter" and box["type"] == "box" and box["xaxis"] == "x2"
    # Each trial at its best value; the pruned one as an open circle.
    assert scatter["y"] == [0.62, 0.9, 0.4, 0.55] and scatter["marker"]["symbol"][2] == "circle-open"
    assert charts.scatter_figure({"lr": {"uniform": [0.01, 0.1]}}, TRIALS, metric="val_acc")[
        "layout"]["xaxis"].get("type") is None


def test_parallel_coordinates_map_categories_to_ticks_and_end_at_the_metric():
    figure = charts.parallel_figure(LOG, TRIALS, metric="val_loss")
    (trace,) = figure["data"]
    lr, optimizer, metric = trace["dimensions"]
    assert lr["label"] == "lr (log)" and lr["values"][0] == -4
    assert optimizer["ticktext"] == ["sgd", "adam", "&lt;b&gt;adam&lt;/b&gt;"]
    assert optimizer["values"] == [0, 1, 0, 2] and optimizer["tickvals"] == [0, 1, 2]
    # val_loss is minimised: each trial's lowest, and the colour scale turned so that better is brighter.
    assert metric["values"] == [0.5, 0.7, 0.4, 0.55] and trace["line"]["reversescale"] is True
    assert charts.parallel_figure(LOG, [], metric="val_acc")["data"] == []


def test_importance_bars_or_the_sentence_saying_what_is_missing():
    placeholder = charts.importance_figure(None, finished=2)
    assert placeholder["data"] == []
    assert "at least 4 finished trials" in placeholder["layout"]["annotations"][0]["text"]
    assert "2 finished so far" in placeholder["layout"]["annotations"][0]["text"]
    figure = charts.importance_figure({"lr": 0.8, "optimizer": 0.2}, finished=6)
    assert figure["data"][0]["y"] == ["optimizer", "lr"] and figure["data"][0]["x"] == [0.2, 0.8]


def test_progress_counts_trials_and_estimates_what_is_left():
    progress = charts.progress(TRIALS, total=6, default_epochs=3, seconds=[2.0, 4.0])
    assert (progress["done"], progress["pruned"], progress["running"], progress["failed"]) == (2, 1, 1, 0)
    # Ended trials count what they trained (the pruned one 1 epoch), the running one its plan, two to come 3 each.
    assert progress["epochs_trained"] == 3 + 3 + 1 + 1
    assert progress["epochs_budget"] == 3 + 3 + 1 + 3 + 2 * 3
    assert progress["eta_seconds"] == (16 - 8) * 3.0 / 1
    done = [trial(0, {"lr": 1e-3}, {1: 0.5})]
    assert charts.progress(done, total=1, default_epochs=1, seconds=[1.0])["eta_seconds"] is None
    assert charts.progress([], total=4, default_epochs=2, seconds=[])["fraction"] == 0.0


def test_figures_are_json_with_no_nan():
    broken = [trial(0, {"lr": 1e-3, "optimizer": "sgd"}, {1: float("nan"), 2: 0.5})]
    text = json.dumps(charts.figures(LOG, broken, metric="val_acc", colour="lr", importance=None), allow_nan=False)
    assert "NaN" not in text
    empty = charts.figures(LOG, [], metric="val_acc", colour="optimizer", importance=None)
    assert "No trial has started yet." in json.dumps(empty["overlay"]["layout"])
