import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from honcho.manager import Manager

from dlstudio import launcher


class Command(BaseCommand):
    help = ("Migrate, create the admin user on first run, then run the web server, the Celery workers, "
            "the scheduler (and Redis when none answers) in the foreground until Ctrl-C.")

    def handle(self, *args, **options):
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
        manager = Manager()
        for name, command in commands.items():
            manager.add_process(name, command, env=env, cwd=str(base))
        self.stdout.write(self.style.SUCCESS(
            f"dlstudio is starting at http://{settings.BIND}/ — sign in as admin. Ctrl-C stops everything."))
        self.stdout.flush()
        manager.loop()
        # Ctrl-C (or a SIGTERM from a supervisor) is how this is meant to stop: not an error.
        sys.exit(0 if manager.returncode in (130, 143) else manager.returncode)
