import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from dlstudio import launcher
from dlstudio.storage import check_storage
from dlstudio.supervisor import Supervisor


class Command(BaseCommand):
    help = ("Migrate, create the admin user on first run, then run the web server, the Celery workers, "
            "the scheduler (and Redis when none answers) in the foreground until Ctrl-C, starting again any "
            "of them that exits.")

    def handle(self, *args, **options):
        check_storage()
        call_command("migrate", interactive=False, verbosity=0)
        call_command("ensure_admin")
        base = Path(settings.BASE_DIR)
        commands = launcher.procfile_commands(base / "Procfile", settings.WORKER_QUEUES)
        if not launcher.redis_answers(settings.REDIS_URL):
            try:
                commands = {"redis": launcher.local_redis_command(
                    settings.REDIS_URL, settings.DATA_DIR, base / "bin"), **commands}
            except launcher.LaunchError as exc:
                raise CommandError(str(exc)) from None

        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("DLSTUDIO_DATA_DIR", str(settings.DATA_DIR))
        self.stdout.write(self.style.SUCCESS(
            f"dlstudio is starting at http://{settings.BIND}/ — sign in as admin. Ctrl-C stops everything."))
        self.stdout.flush()
        sys.exit(Supervisor(commands, env=env, cwd=str(base), data_dir=settings.DATA_DIR).run())
