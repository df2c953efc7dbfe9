from django.apps import AppConfig


class SweepsConfig(AppConfig):
    name = "apps.sweeps"
    verbose_name = "Sweeps"
