from django.urls import NoReverseMatch, reverse

# (label, url name, the url names that highlight it). An area appears once its app provides the page.
NAV = [
    ("Home", "home", {"home"}),
    ("Datasets", "dataset_list", {"dataset_list", "dataset_detail", "dataset_upload"}),
    ("Experiments", "experiment_list", {"experiment_list", "experiment_detail", "experiment_create"}),
    ("Runs", "run_list", {"run_list", "run_detail", "run_compare"}),
    ("Team", "team_current", {"team_current", "team_detail"}),
]


def navigation(request):
    current = getattr(request.resolver_match, "url_name", None)
    items = []
    for label, name, section in NAV:
        try:
            items.append({"label": label, "url": reverse(name), "current": current in section})
        except NoReverseMatch:
            continue
    return {"nav_items": items}
