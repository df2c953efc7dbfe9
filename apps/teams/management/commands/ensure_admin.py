import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the `admin` superuser on first run (password from DLSTUDIO_ADMIN_PASSWORD, else generated)."

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            return
        password = settings.ADMIN_PASSWORD or secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", email="", password=password)
        if settings.ADMIN_PASSWORD:
            self.stdout.write("Created the admin user with the password from DLSTUDIO_ADMIN_PASSWORD.")
        else:
            self.stdout.write(self.style.WARNING(
                f"Created the admin user. Its password, shown this once: {password}"))
