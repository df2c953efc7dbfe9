from django.contrib import admin

from .models import Experiment, LRFinding


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "dataset", "created"]
    search_fields = ["name"]
    list_filter = ["team"]


@admin.register(LRFinding)
class LRFindingAdmin(admin.ModelAdmin):
    list_display = ["id", "experiment", "status", "suggested_lr", "created"]
    list_filter = ["status"]
