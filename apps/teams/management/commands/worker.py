import socket
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from honcho.environ import parse_procfile

from dlstudio import launcher
from dlstudio.storage import check_storage
from dlstudio.supervisor import Supervisor
from workers.engine import hardware

# Not `make run`'s processes.json: the web machine's loop and this one may share a data dir.
STATE_FILE = "gpu-workers.json"


class Command(BaseCommand):
    help = ("Run one training worker per GPU (named gpuN@host, seeing only GPU N), or one CPU training "
            "worker (cpu@host) on a machine without GPUs, in the foreground until Ctrl-C, starting again "
            "any that exits.")

    def add_arguments(self, parser):
        parser.add_argument("--gpus", default="all",
                            help="'all' (the default) or GPU indexes as nvidia-smi numbers them, such as 0,2.")

    def handle(self, *args, **options):
        # NVML, not torch.cuda: CUDA initialised here would hold memory on every GPU for the whole run.
        present = [reading["index"] for reading in hardware.gpu_readings()]
        try:
            gpus = launcher.gpu_indexes(options["gpus"], present)
        except launcher.LaunchError as exc:
            raise CommandError(str(exc)) from None
        if not launcher.redis_answers(settings.REDIS_URL):  # a worker would retry it for ever, quietly
            raise CommandError(f"Nothing answers at REDIS_URL={launcher.without_password(settings.REDIS_URL)}; "
                               "point it at the web machine's Redis and check that its port is reachable.")
        check_storage()
        host = socket.gethostname()
        commands = launcher.training_worker_commands(self.train_command(), gpus, host)

        names = ", ".join(f"{name}@{host}" for name in commands)
        self.stdout.write(self.style.SUCCESS(f"Starting the training workers {names}. Ctrl-C stops them."))
        self.stdout.flush()
        Supervisor(commands, env=launcher.child_environment(settings.DATA_DIR), cwd=str(settings.BASE_DIR),
                   data_dir=settings.DATA_DIR, state_file=STATE_FILE).run()

    def train_command(self) -> str:
        """The Procfile's training worker, the one `make run` starts (its name is replaced per GPU)."""
        procfile = Path(settings.BASE_DIR) / "Procfile"
        return parse_procfile(procfile.read_text()).processes["train"]
