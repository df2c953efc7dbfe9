from django.contrib import admin

from .models import WeightsFile


@admin.register(WeightsFile)
class WeightsFileAdmin(admin.ModelAdmin):
    list_display = ["name", "arch", "team", "format", "size", "created"]
    list_filter = ["arch", "team"]
    search_fields = ["name", "sha256"]
    readonly_fields = ["path", "format", "size", "sha256", "tensors"]
