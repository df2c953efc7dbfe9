"""Dataset charts as pure functions: rows in, Plotly figure dicts out (rendered by static/js/charts.js).

Class names are user input (archive folder names): they enter a figure through `label`
(dlstudio/chart_style.py says why).
"""
from dlstudio.chart_style import BASE_LAYOUT, SPLIT_COLOURS, label


def class_split_bars(counts: list[dict]) -> dict:
    """Images per class, stacked by split: imbalance and thin held-out splits show at a glance."""
    names = [label(c["name"]) for c in counts]
    data = [
        {"type": "bar", "name": split, "x": names, "y": [c[split] for c in counts],
         "marker": {"color": colour}, "hovertemplate": "%{x}<br>" + split + ": %{y}<extra></extra>"}
        for split, colour in SPLIT_COLOURS.items()
    ]
    layout = {**BASE_LAYOUT, "barmode": "stack", "xaxis": {"title": {"text": "class"}, "type": "category"},
              "yaxis": {"title": {"text": "images"}}, "legend": {"orientation": "h", "y": 1.12}}
    return {"data": data, "layout": layout}


def original_sizes_scatter(sizes: list[tuple[int, int, int]]) -> dict:
    """Original width x height, one marker per distinct size, sized by how many images have it."""
    largest = max((n for _, _, n in sizes), default=1)
    data = [{
        "type": "scatter", "mode": "markers",
        "x": [w for w, _, _ in sizes], "y": [h for _, h, _ in sizes],
        "text": [f"{n} image{'s' if n != 1 else ''}" for _, _, n in sizes],
        "marker": {"size": [8 + 30 * (n / largest) ** 0.5 for _, _, n in sizes], "color": "#2f6fde",
                   "opacity": 0.6, "line": {"width": 0}},
        "hovertemplate": "%{x} × %{y} px<br>%{text}<extra></extra>",
    }]
    layout = {**BASE_LAYOUT, "xaxis": {"title": {"text": "width (px)"}, "rangemode": "tozero"},
              "yaxis": {"title": {"text": "height (px)"}, "rangemode": "tozero"}, "showlegend": False}
    return {"data": data, "layout": layout}
