"""charts.py as pure functions: figure structure, the live trace contract, marks and escaping."""
import json

import pytest

from apps.experiments.charts import lr_finder_figure
from apps.runs import charts
from apps.runs.charts import LIVE_TRACES

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def metrics(n=6, *, val=True):
    return [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.5 + 0.05 * e,
             "val_loss": (2.2 / e if val else None), "val_acc": (0.45 + 0.04 * e if val else None),
             "lr": 1e-3 * 0.5 ** e, "seconds": 3.0, "images_per_s": 900.0} for e in range(1, n + 1)]


OVERFITTING = {"overfitting": True, "since_epoch": 4, "message": "…", "kind": "overfitting"}
HEALTHY = {"overfitting": False, "since_epoch": None, "message": "…", "kind": "healthy"}
LIVE = {"loss": charts.loss_figure, "accuracy": charts.accuracy_figure, "gap": charts.gap_figure,
        "lr": lambda rows, **kw: charts.lr_figure(rows)}


def dumps(figure):
    return json.dumps(figure, allow_nan=False)  # what json_script + JSON.parse accept


def named(items, name):
    return [item for item in items if item.get("name") == name]


def all_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from all_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from all_strings(v)


@pytest.mark.parametrize("name", LIVE)
@pytest.mark.parametrize("n", [0, 1, 6])
def test_live_figures_have_one_trace_per_live_series_even_without_rows(name, n):
    figure = LIVE[name](metrics(n), best_epoch=None, diagnosis=None)
    dumps(figure)
    assert set(figure) == {"data", "layout"}
    assert len(figure["data"]) == len(LIVE_TRACES[name])
    for trace in figure["data"]:
        assert trace["x"] == list(range(1, n + 1)) and len(trace["y"]) == n
        assert trace["type"] == "scatter"
    assert figure["layout"]["xaxis"]["title"]["text"] == "epoch"


def test_trace_order_matches_live_traces_and_live_update():
    rows = metrics(5)
    update = charts.live_update(rows)
    assert list(update) == list(LIVE_TRACES)
    for name, keys in LIVE_TRACES.items():
        figure = LIVE[name](rows)
        for i, key in enumerate(keys):
            expected = [charts.series(r, key) for r in rows]
            assert figure["data"][i]["y"] == update[name]["y"][i] == expected
            assert figure["data"][i]["name"] == charts.TRACE_NAMES[key]
    assert [t["name"] for t in charts.loss_figure(rows)["data"]] == ["train", "validation"]
    gap = charts.gap_figure(rows)["data"][0]["y"]
    assert gap == pytest.approx([r["train_acc"] - r["val_acc"] for r in rows])
    dumps(update)


def test_missing_and_non_finite_values_become_gaps():
    rows = metrics(3, val=False)
    rows[1]["train_loss"] = float("nan")
    rows[2]["lr"] = 0.0
    loss = charts.loss_figure(rows)
    assert loss["data"][0]["y"][1] is None and loss["data"][1]["y"] == [None, None, None]
    assert charts.gap_figure(rows)["data"][0]["y"] == [None, None, None]
    assert charts.lr_figure(rows)["data"][0]["y"][2] is None
    dumps(loss)


def test_lr_figure_has_a_log_axis():
    figure = charts.lr_figure(metrics(4))
    assert figure["layout"]["yaxis"]["type"] == "log"
    assert figure["data"][0]["y"] == pytest.approx([1e-3 * 0.5 ** e for e in range(1, 5)])


@pytest.mark.parametrize("make", [charts.loss_figure, charts.accuracy_figure, charts.gap_figure])
def test_best_epoch_is_a_dashed_vertical_line_with_a_label(make):
    layout = make(metrics(6), best_epoch=3)["layout"]
    [line] = named(layout["shapes"], "best_epoch")
    assert line["type"] == "line" and line["x0"] == line["x1"] == 3 and line["line"]["dash"] == "dash"
    assert (line["yref"], line["y0"], line["y1"]) == ("paper", 0, 1)
    [note] = named(layout["annotations"], "best_epoch")
    assert note["x"] == 3 and "3" in note["text"]
    assert not named(make(metrics(6))["layout"]["shapes"], "best_epoch")


@pytest.mark.parametrize("make", [charts.loss_figure, charts.accuracy_figure, charts.gap_figure])
def test_overfitting_region_is_shaded_iff_the_diagnosis_says_so(make):
    rows = metrics(9)
    layout = make(rows, best_epoch=3, diagnosis=OVERFITTING)["layout"]
    [rect] = named(layout["shapes"], "overfitting")
    assert rect["type"] == "rect" and (rect["x0"], rect["x1"]) == (4, 9) and rect["yref"] == "paper"
    assert named(layout["annotations"], "overfitting")
    for diagnosis in (None, HEALTHY, {**OVERFITTING, "overfitting": False}):
        layout = make(rows, best_epoch=3, diagnosis=diagnosis)["layout"]
        assert not named(layout["shapes"], "overfitting") and not named(layout["annotations"], "overfitting")
    dumps(make(rows, best_epoch=3, diagnosis=OVERFITTING))


def test_the_lr_figure_is_never_shaded():
    assert charts.lr_figure(metrics(9))["layout"]["shapes"] == []


def test_confusion_matrix_has_true_classes_down_from_the_top_and_counts_as_text():
    classes = ["cat", "dog", "7"]
    confusion = [[5, 1, 0], [2, 8, 0], [0, 0, 3]]
    figure = charts.confusion_figure(classes, confusion)
    dumps(figure)
    [trace] = figure["data"]
    layout = figure["layout"]
    assert trace["type"] == "heatmap"
    assert trace["y"] == classes and trace["x"] == classes
    assert layout["yaxis"]["autorange"] == "reversed"  # first class at the top
    assert layout["yaxis"]["title"]["text"] == "true" and layout["xaxis"]["title"]["text"] == "predicted"
    assert layout["xaxis"]["type"] == layout["yaxis"]["type"] == "category"  # "7" is a name, not a number
    assert trace["text"][1][0] == "2"  # true dog, predicted cat
    assert trace["z"][1][0] == pytest.approx(0.2) and trace["z"][2][2] == 1.0
    assert trace["texttemplate"] == "%{text}"


def test_a_confusion_matrix_of_many_classes_drops_the_cell_text():
    classes = [f"class {i}" for i in range(100)]
    confusion = [[10 if i == j else (1 if j == (i + 1) % 100 else 0) for j in range(100)] for i in range(100)]
    confusion[5] = [0] * 100  # a class without test images divides by nothing
    figure = charts.confusion_figure(classes, confusion)
    dumps(figure)
    trace = figure["data"][0]
    assert "texttemplate" not in trace and len(trace["z"]) == 100
    assert "%{text}" in trace["hovertemplate"] and trace["z"][5] == [0.0] * 100


def test_per_class_figure_groups_precision_recall_and_f1():
    per_class = [{"class": "cat", "precision": 0.9, "recall": 0.8, "f1": 0.847, "support": 10},
                 {"class": "dog", "precision": 0.7, "recall": 0.75, "f1": 0.724, "support": 12}]
    figure = charts.per_class_figure(per_class)
    dumps(figure)
    assert figure["layout"]["barmode"] == "group"
    assert [t["name"] for t in figure["data"]] == ["precision", "recall", "f1"]
    assert all(t["type"] == "bar" and t["x"] == ["cat", "dog"] for t in figure["data"])
    assert figure["data"][1]["y"] == [0.8, 0.75] and figure["data"][0]["customdata"] == [10, 12]


def test_compare_gives_each_run_its_own_colour_train_dashed_and_val_solid():
    runs = [{"label": f"run {i}", "metrics": metrics(3 + i)} for i in range(8)]
    figures = charts.compare_figures(runs)
    assert set(figures) == {"loss", "accuracy"}
    for figure in figures.values():
        dumps(figure)
        assert len(figure["data"]) == 16
        colours = {t["legendgroup"]: t["line"]["color"] for t in figure["data"]}
        assert len(set(colours.values())) == 8
        for train, val in zip(figure["data"][::2], figure["data"][1::2]):
            assert train["line"]["color"] == val["line"]["color"]
            assert train["line"]["dash"] == "dash" and val["line"]["dash"] == "solid"
            assert "train" in train["name"] and "validation" in val["name"]
    assert figures["loss"]["data"][-1]["x"] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]


def test_lr_finder_marks_the_suggested_rate_on_a_log_axis():
    lrs = [1e-6 * 10 ** (i / 10) for i in range(60)]
    losses = [2.3 - 0.02 * i if i < 40 else float("inf") for i in range(60)]
    figure = lr_finder_figure(lrs, losses, 1e-3)
    dumps(figure)
    assert figure["layout"]["xaxis"]["type"] == "log"
    [line] = named(figure["layout"]["shapes"], "suggested_lr")
    assert line["x0"] == line["x1"] == 1e-3  # shapes take data values on a log axis
    [note] = named(figure["layout"]["annotations"], "suggested_lr")
    assert note["x"] == pytest.approx(-3)  # annotations take log10
    assert figure["data"][0]["y"][-1] is None
    assert lr_finder_figure(lrs, losses, None)["layout"]["shapes"] == []
    assert lr_finder_figure([], [], None)["data"][0]["x"] == []


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_class_names_and_run_labels_are_escaped_data(hostile):
    figures = [
        charts.confusion_figure([hostile, "ok"], [[1, 0], [0, 1]]),
        charts.per_class_figure([{"class": hostile, "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}]),
        *charts.compare_figures([{"label": hostile, "metrics": metrics(2)},
                                 {"label": "b", "metrics": metrics(2)}]).values(),
    ]
    escaped = hostile.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for figure in figures:
        text = dumps(figure)
        strings = list(all_strings(figure))
        assert not any("<script" in s or "<img" in s for s in strings), strings
        assert any(escaped in s for s in strings)
        assert "<script" not in text and "<img" not in text
        for trace in figure["data"]:
            assert "alert" not in trace.get("hovertemplate", "")  # templates are constants
    confusion = figures[0]["data"][0]
    assert confusion["x"][0] == confusion["y"][0] == escaped


def test_escaping_keeps_distinct_names_distinct():
    names = ["<b>", "&lt;b&gt;"]
    assert len({charts.label(n) for n in names}) == 2
    assert charts.label("a & b < c > d") == "a &amp; b &lt; c &gt; d"


def test_every_figure_is_valid_plotly():
    # The plotly package validates every property name and value; the module itself never imports it.
    go = pytest.importorskip("plotly.graph_objects")
    rows = metrics(8)
    figures = [make(rows, best_epoch=3, diagnosis=OVERFITTING) for make in LIVE.values()]
    figures += [make([]) for make in LIVE.values()]
    figures += [charts.confusion_figure(["a", "b"], [[1, 2], [3, 4]]),
                charts.confusion_figure([str(i) for i in range(40)], [[1] * 40 for _ in range(40)]),
                charts.per_class_figure([{"class": "a", "precision": 1, "recall": 0.5, "f1": 0.67, "support": 2}]),
                *charts.compare_figures([{"label": "a", "metrics": rows}, {"label": "b", "metrics": rows}]).values(),
                lr_finder_figure([1e-5, 1e-4, 1e-3], [2.3, 2.0, 2.5], 1e-4)]
    for figure in figures:
        go.Figure(figure)
