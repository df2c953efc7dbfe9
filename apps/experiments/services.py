"""Writes for experiments: create one (its config validated by the engine), start an LR range test.

What a worker does during the range test lives in `lr_finder.py`; runs are started by the runs app.
"""
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.datasets.selectors import number_of_classes
from apps.runs.selectors import starting_run
from apps.teams.permissions import require_editor
from workers import broker, engine
from workers.engine import ConfigError, TrainConfig

from .models import Experiment, LRFinding
from .selectors import ACTIVE_FINDINGS

LR_RANGE_TEST_TASK = "experiments.lr_range_test"
# The row has no heartbeat: a test that has not finished this long after it was queued (its worker was
# killed, or it waited behind long runs) no longer blocks a new one. It takes seconds to minutes.
GIVE_UP_AFTER = timedelta(hours=1)


def config_validate(config: dict, overrides: dict | None = None, *, dataset=None) -> dict:
    """The full config with defaults (and `overrides` merged in, nested keys one by one), or a
    ValidationError naming the field (code `config.lr`). With a ready `dataset`, also refused when training
    it on that dataset's images would need more memory than DLSTUDIO_MAX_RUN_GB (`config_fits`)."""
    try:
        valid = TrainConfig.from_dict(config)
        if overrides:
            valid = valid.with_overrides(overrides)
    except ConfigError as exc:
        raise ValidationError(exc.message, code=f"config.{exc.field}") from None
    if dataset is not None and dataset.is_ready:
        config_fits(valid, dataset)
    return valid.to_dict()


def config_fits(config: TrainConfig, dataset) -> None:
    """ValidationError when the memory estimate of training `config` on `dataset` is over DLSTUDIO_MAX_RUN_GB;
    its code names the key that weighs most (`config.hidden_units` or `config.batch_size`)."""
    memory = engine.estimate_run_bytes(config, num_classes=max(1, number_of_classes(dataset.pk)),
                                       channels=dataset.channels, image_size=dataset.image_size)
    if memory.gigabytes > settings.MAX_RUN_GB:
        key = "hidden_units" if memory.weights_bytes >= memory.activation_bytes else "batch_size"
        raise ValidationError(engine.too_big_sentence(config, memory, limit_gb=settings.MAX_RUN_GB,
                                                      setting="DLSTUDIO_MAX_RUN_GB"), code=f"config.{key}")


@transaction.atomic
def experiment_create(*, team, user, name: str, dataset, config: dict, weights_file=None) -> Experiment:
    """`weights_file`: a WeightsFile of the team to use for `pretrained: "imagenet"`."""
    config = config_validate(config, dataset=dataset)
    if not dataset.is_ready:
        raise ValidationError("That dataset is not ready yet; wait for its ingest to finish.", code="dataset")
    starting_run(user, config)
    if weights_file is not None:
        if config.get("pretrained") != "imagenet":
            raise ValidationError("A weights file is used only when starting from ImageNet weights.",
                                  code="config.pretrained")
        if weights_file.team_id != team.pk or weights_file.arch != config["arch"]:
            raise ValidationError(f"The weights file {weights_file.name} is for {weights_file.arch}, not "
                                  f"{config['arch']}; pick one that matches the architecture.", code="weights_file")
    return Experiment.objects.create(team=team, created_by=user, name=name.strip(), dataset=dataset, config=config,
                                     weights_file=weights_file)


def experiment_set_config(*, experiment: Experiment, user, config: dict) -> Experiment:
    """Give the experiment a new config (editors and owners): its later runs start from it."""
    require_editor(user, experiment.team)
    config = config_validate(config, dataset=experiment.dataset)
    starting_run(user, config)
    Experiment.objects.filter(pk=experiment.pk).update(config=config)
    experiment.config = config
    return experiment


@transaction.atomic
def lr_finding_start(*, experiment: Experiment, user) -> LRFinding:
    """A queued range test of the experiment's config (editors and owners); one at a time per experiment."""
    require_editor(user, experiment.team)
    dataset = experiment.dataset
    if dataset is None or not dataset.is_ready:
        raise ValidationError("The experiment's dataset is gone or not ready; pick another dataset.", code="dataset")
    config_validate(experiment.config, dataset=dataset)
    starting_run(user, experiment.config)
    # Lock the experiment so two clicks at once cannot both find no test active (PostgreSQL; SQLite
    # serialises writes anyway).
    Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
    now = timezone.now()
    experiment.lr_findings.filter(status__in=ACTIVE_FINDINGS, created__lt=now - GIVE_UP_AFTER).update(
        status=LRFinding.Status.FAILED, finished_at=now,
        error="It had not finished an hour after it was queued (its worker may have stopped), so it was given up.")
    if experiment.lr_findings.filter(status__in=ACTIVE_FINDINGS).exists():
        raise ValidationError("An LR range test of this experiment is already queued or running; "
                              "wait for it to finish.")
    finding = LRFinding.objects.create(experiment=experiment, team=experiment.team, created_by=user)
    broker.send_on_commit(LR_RANGE_TEST_TASK, finding.pk)
    return finding
