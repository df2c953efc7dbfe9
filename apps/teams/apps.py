from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "apps.teams"
    verbose_name = "Teams and accounts"

    def ready(self):
        from . import signals  # noqa: F401  (personal team for every new user)
