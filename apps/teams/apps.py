from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "apps.teams"
    verbose_name = "Teams and accounts"

    def ready(self):
        from . import signals  # noqa: F401, PLC0415  (Django's way: connect the handlers once the apps are ready)
