"""The run search language: reading (every operator, nested keys, and/or/parentheses, bad input with its
position) and what each query finds in the database, within the user's teams only."""
import datetime as dt

import pytest
from django.utils import timezone

from apps.datasets.models import Dataset
from apps.experiments.models import Experiment
from apps.runs.models import Run
from apps.runs.search import MAX_DEPTH, MAX_LENGTH, BoolOp, Comparison, SearchError, parse
from apps.runs.selectors import runs_searched
from apps.sweeps.models import Sweep

# --- reading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">=", "~"])
def test_every_operator_reads(op):
    tree = parse(f"config.lr {op} 0.01")
    assert tree == Comparison("config.lr", op, tree.value, 0)
    assert tree.value.text == "0.01" and tree.value.number == 0.01


def test_operators_need_no_spaces_and_values_are_typed():
    tree = parse("config.augment.hflip=true and epochs>=10 and config.optimizer='adam w'")
    hflip, epochs, optimizer = tree.parts
    assert (hflip.key, hflip.op, hflip.value.boolean) == ("config.augment.hflip", "=", True)
    assert (epochs.op, epochs.value.number) == (">=", 10)
    assert optimizer.value.text == "adam w" and optimizer.value.quoted and optimizer.value.number is None


def test_and_binds_tighter_than_or_and_parentheses_group():
    tree = parse("status = failed or best_val_acc > 0.9 and tag = x")
    assert tree.op == "or" and tree.parts[1].op == "and"
    grouped = parse("(status = failed or best_val_acc > 0.9) and tag = x")
    assert grouped.op == "and" and grouped.parts[0].op == "or"
    nested = parse("((epochs = 1))")
    assert (nested.key, nested.position, nested.value.position) == ("epochs", 2, 11)
    assert isinstance(parse("epochs=1 AND epochs=2 Or epochs=3"), BoolOp)


@pytest.mark.parametrize("text, position, words", [
    ("config.lr 0.01", 10, "expected an operator after 'config.lr'"),
    ("best_val_acc >", 14, "expected a value"),
    ("best_val_acc > 0.9 and", 22, "expected a key"),
    ("(epochs = 1", 11, "expected ')'"),
    ("epochs = 1)", 10, "expected 'and', 'or' or the end"),
    ("epochs = 1 2", 11, "expected 'and', 'or' or the end"),
    ("colour = red", 0, "unknown key 'colour'"),
    ("config.l$r = 1", 0, "is not a config key"),
    ("config.lr =< 1", 11, "expected a value"),
    ("config.lr ! 1", 10, "unknown operator"),
    ("tag = 'open", 6, "is not closed"),
    ("", 0, "the query is empty"),
])
def test_bad_input_names_the_position(text, position, words):
    with pytest.raises(SearchError) as caught:
        parse(text)
    assert caught.value.position == position and words in caught.value.sentence
    assert str(caught.value).endswith(f"at position {position}")


def test_length_and_depth_are_bounded():
    with pytest.raises(SearchError, match="longer than"):
        parse("epochs = 1 or " * (MAX_LENGTH // 10))
    parse("(" * MAX_DEPTH + "epochs = 1" + ")" * MAX_DEPTH)
    with pytest.raises(SearchError, match="deeper than") as caught:
        parse("(" * (MAX_DEPTH + 1) + "epochs = 1" + ")" * (MAX_DEPTH + 1))
    assert caught.value.position == MAX_DEPTH


# --- finding -----------------------------------------------------------------------------------------


@pytest.fixture
def history(world, django_user_model):
    """Runs of the world's team with known configs and results, and one of the outsider's team that
    matches everything."""
    dataset = Dataset.objects.create(team=world.team, name="flowers", version=1)
    v3 = Dataset.objects.create(team=world.team, name="flowers", version=3, root=dataset)
    experiment = Experiment.objects.create(team=world.team, name="baseline", dataset=dataset, config={})
    sweep = Sweep.objects.create(team=world.team, experiment=experiment, name="lr sweep", method="grid",
                                 parameters={}, trials=1)
    start = timezone.now() - dt.timedelta(days=10)

    def run(name, config, *, team=world.team, exp=experiment, **fields):
        created = fields.pop("created", start)
        made = Run.objects.create(team=team, experiment=exp, config=config, arch="cnn", **fields)
        Run.objects.filter(pk=made.pk).update(created=created)
        return name, made

    other_experiment = Experiment.objects.create(team=world.other_team, name="baseline", config={})
    runs = dict([
        run("adam", {"lr": 0.001, "optimizer": "adam", "augment": {"hflip": True}}, best_val_acc=0.97,
            test_acc=0.95, epochs=20, status="succeeded", dataset=dataset, created_by=world.editor,
            tags=["best", "v1"], started_at=start, finished_at=start + dt.timedelta(seconds=300)),
        run("sgd", {"lr": 0.1, "optimizer": "sgd", "augment": {"hflip": False}}, best_val_acc=0.91, epochs=10,
            status="succeeded", dataset=v3, created_by=world.owner, sweep=sweep, trial_number=1,
            started_at=start, finished_at=start + dt.timedelta(seconds=60)),
        run("text-lr", {"lr": "0.005", "optimizer": "Adam"}, status="failed", epochs=5, dataset=v3),
        run("no-lr", {"optimizer": "adamw"}, status="queued", epochs=5,
            created=start + dt.timedelta(days=5)),
        run("foreign", {"lr": 0.001, "optimizer": "adam", "augment": {"hflip": True}}, team=world.other_team,
            exp=other_experiment, best_val_acc=0.99, epochs=20, status="succeeded", tags=["best"]),
    ])
    return runs


def found(user, query, history, ordering="-created"):
    names = {run.pk: name for name, run in history.items()}
    return {names[pk] for pk in runs_searched(user, query=query, ordering=ordering).values_list("pk", flat=True)}


@pytest.mark.django_db
@pytest.mark.parametrize("query, expected", [
    ("config.lr < 0.01", {"adam"}),  # the text "0.005" is not a number, on SQLite nor PostgreSQL
    ("config.lr <= 0.1", {"adam", "sgd"}),
    ("config.lr > 0.001", {"sgd"}),
    ("config.lr >= 0.001", {"adam", "sgd"}),
    ("config.lr = 0.1", {"sgd"}),
    ("config.lr != 0.1", {"adam", "text-lr"}),  # a run without the key matches no comparison
    ("config.lr = '0.005'", {"text-lr"}),
    ("config.optimizer = adam", {"adam"}),
    ("config.optimizer ~ ADAM", {"adam", "text-lr", "no-lr"}),
    ("config.augment.hflip = true", {"adam"}),
    ("config.augment.hflip = false", {"sgd"}),
    ("best_val_acc > 0.95", {"adam"}),
    ("best_val_acc != 0.97", {"sgd"}),
    ("test_acc >= 0.95", {"adam"}),
    ("epochs < 10", {"text-lr", "no-lr"}),
    ("duration > 120", {"adam"}),
    ("duration <= 60", {"sgd"}),
    ("status = succeeded", {"adam", "sgd"}),
    ("status != succeeded", {"text-lr", "no-lr"}),
    ("dataset = flowers", {"adam", "sgd", "text-lr"}),
    ("dataset = flowers and dataset.version = 3", {"sgd", "text-lr"}),
    ("dataset.version < 3", {"adam"}),
    ("experiment = baseline", {"adam", "sgd", "text-lr", "no-lr"}),
    ("experiment ~ base and epochs = 20", {"adam"}),
    ("sweep = 'lr sweep'", {"sgd"}),
    ("tag = best", {"adam"}),
    ("tag ~ v", {"adam"}),
    ("by = eddie", {"adam"}),
    ("by ~ oli", {"sgd"}),
    ("config.lr < 0.01 and config.optimizer = adam and best_val_acc > 0.95", {"adam"}),
    ("config.optimizer = sgd or status = failed", {"sgd", "text-lr"}),
    ("(config.optimizer = sgd or status = failed) and epochs = 5", {"text-lr"}),
    ("config.optimizer = sgd or status = failed and epochs = 10", {"sgd"}),
])
def test_queries_find_the_runs_of_the_users_teams_only(world, history, query, expected):
    assert found(world.viewer, query, history) == expected


@pytest.mark.django_db
def test_dates_ids_and_the_outsiders_view(world, history):
    sgd = history["sgd"]
    day = Run.objects.get(pk=sgd.pk).created.date()
    assert found(world.viewer, f"created > {day + dt.timedelta(days=1)}", history) == {"no-lr"}
    assert found(world.viewer, f"created = {day}", history) == {"adam", "sgd", "text-lr"}
    assert found(world.viewer, f"sweep = {sgd.sweep_id}", history) == {"sgd"}
    assert found(world.viewer, f"dataset = {sgd.dataset_id}", history) == {"sgd", "text-lr"}
    # The outsider's own run matches; the team's never do.
    assert found(world.outsider, "config.lr < 0.01 or tag = best", history) == {"foreign"}


@pytest.mark.django_db
@pytest.mark.parametrize("query, words", [
    ("config.optimizer < adam", "compares numbers"),
    ("best_val_acc > high", "compares with a number"),
    ("status = done", "is not a status"),
    ("created > yesterday", "is not a date"),
    ("tag < x", "tag compares with"),
])
def test_values_that_do_not_fit_the_key_are_refused_at_their_position(world, history, query, words):
    with pytest.raises(SearchError) as caught:
        runs_searched(world.viewer, query=query)
    assert words in caught.value.sentence and caught.value.position == query.rindex(query.split()[-1])


@pytest.mark.django_db
def test_any_numeric_result_or_config_key_orders(world, history):
    def order(ordering):
        names = {run.pk: name for name, run in history.items()}
        return [names[pk] for pk in runs_searched(world.viewer, ordering=ordering).values_list("pk", flat=True)]
    assert order("-best_val_acc") == ["adam", "sgd"]
    assert order("config.lr") == ["adam", "sgd"]  # the text "0.005" and a missing lr are left out
    assert order("-config.lr") == ["sgd", "adam"]
    assert order("duration") == ["sgd", "adam"]
    assert order("epochs")[-1] == "adam" and order("-created")[0] == "no-lr"
    from django.core.exceptions import ValidationError
    with pytest.raises(ValidationError):
        runs_searched(world.viewer, ordering="config.l$r")
