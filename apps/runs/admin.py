from django.contrib import admin

from .models import EpochMetric, Evaluation, Run


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "experiment", "status", "attempt", "epoch", "epochs", "best_val_acc", "worker", "created"]
    list_filter = ["status", "arch", "team"]
    search_fields = ["experiment__name", "worker"]
    readonly_fields = ["lease_owner", "heartbeat_at"]


admin.site.register(EpochMetric)
admin.site.register(Evaluation)
