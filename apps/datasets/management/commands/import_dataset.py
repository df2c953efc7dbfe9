import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.datasets import sample
from apps.datasets.models import Dataset
from apps.datasets.serializers import LABEL_CHOICES, DatasetOptionsSerializer
from apps.datasets.services import dataset_create
from apps.teams.selectors import team_with_slug
from workers.engine import COLORS, RESIZE_MODES


class Command(BaseCommand):
    help = "Create a dataset from an archive on this machine (or --sample digits), like an upload."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="A zip, tar or tar.gz: <class>/<image>, or see --labels.")
        parser.add_argument("--team", required=True, help="The team's slug.")
        parser.add_argument("--name", help="The dataset's name (default: the file's name).")
        parser.add_argument("--sample", choices=sorted(sample.SAMPLES), help="Build a bundled sample instead.")
        parser.add_argument("--val-fraction", type=float, default=0.2)
        parser.add_argument("--test-fraction", type=float, default=0.1)
        parser.add_argument("--image-size", type=int)
        parser.add_argument("--resize-mode", choices=RESIZE_MODES, default="squash")
        parser.add_argument("--color", choices=COLORS, default="auto")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--labels", choices=LABEL_CHOICES, default="folders",
                            help="Where each image's class comes from: class folders (default), the file name "
                                 "(cat.0.jpg), labels.csv, or auto.")
        parser.add_argument("--no-wait", action="store_true", help="Return once queued, without waiting.")

    def handle(self, *args, path, team, name, sample: str | None, no_wait, **options):
        team_obj = team_with_slug(team)
        if team_obj is None:
            raise CommandError(f"There is no team {team!r}; create it with manage.py adduser.")
        if sample:
            dataset = _created(lambda: sample_create(team_obj, name))
        else:
            if not path or not Path(path).is_file():
                raise CommandError(f"{path!r} is not a file; give the path of a zip or tar archive.")
            values = {k: options[k] for k in ("val_fraction", "test_fraction", "image_size", "resize_mode",
                                              "color", "seed", "labels")}
            parsed = DatasetOptionsSerializer(data=values)
            if not parsed.is_valid():
                field, errors = next(iter(parsed.errors.items()))
                raise CommandError(f"--{field.replace('_', '-')}: {errors[0]}")
            dataset = _created(lambda: dataset_create(team=team_obj, user=None, name=name or Path(path).name,
                                                      source_path=Path(path), options=parsed.validated_data))
        self.stdout.write(f"Dataset {dataset.pk} ({dataset.name}) queued for ingest.")
        if not no_wait:
            self._wait(dataset)

    def _wait(self, dataset):
        last = -1
        while True:
            dataset.refresh_from_db()
            if dataset.status != Dataset.Status.INGESTING:
                break
            percent = int(dataset.progress * 100)
            if percent != last:
                self.stdout.write(f"  ingesting: {percent}%")
                last = percent
            time.sleep(1)  # polling the row a worker updates; nothing to synchronise with
        if dataset.status == Dataset.Status.FAILED:
            raise CommandError(f"Ingest failed: {dataset.error}")
        self.stdout.write(self.style.SUCCESS(
            f"Ready: {dataset.num_images} images, {dataset.classes.count()} classes, {dataset.image_size} px."))


def sample_create(team, name):
    kwargs = {"name": name} if name else {}
    return sample.digits_dataset_create(team=team, user=None, **kwargs)


def _created(create):
    try:
        return create()
    except ValidationError as exc:
        raise CommandError(exc.messages[0]) from None
