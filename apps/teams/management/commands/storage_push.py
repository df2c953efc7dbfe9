from django.core.management.base import BaseCommand, CommandError

from apps.datasets import selectors as datasets
from apps.runs import selectors as runs
from apps.weights import selectors as weights
from dlstudio import storage


class Command(BaseCommand):
    help = ("Copy every file a row names (uploads waiting for ingest, dataset packs, runs' checkpoints, weights "
            "files) from this machine's data dir into the object store of DLSTUDIO_STORAGE_URL: once, when a "
            "deployment that kept its files in the data dir moves to an object store (docs/STORAGE.md). Files "
            "already in the store are left as they are; the data dir is not changed.")

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME",
                            help="copy only these files, named relative to the data dir (a row need not name them)")

    def handle(self, *args, names=(), **options):
        storage.check_storage()
        if not storage.in_object_store():
            raise CommandError("DLSTUDIO_STORAGE_URL names no object store (it is empty: the data dir is the "
                               "store); set it to the store to copy the files into.")
        names = set(names) or datasets.stored_files() | runs.stored_files() | weights.stored_files()
        copied = missing = present = 0
        for name in sorted(names):
            if storage.stored(name):
                present += 1
            elif storage.absolute(name).exists():
                storage.put(name, keep=True)
                copied += 1
            else:
                missing += 1
                self.stderr.write(f"{name}: named by a row, but not in the data dir")
        self.stdout.write(f"Copied {copied} files into the object store; {present} were there already, "
                          f"{missing} are missing from the data dir.")
