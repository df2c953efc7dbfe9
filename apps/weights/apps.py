from django.apps import AppConfig


class WeightsConfig(AppConfig):
    name = "apps.weights"
    verbose_name = "Weights library"
