from django.urls import path

from . import api, views

urlpatterns = [
    path("experiments/<int:experiment_id>/runs", views.experiment_start_run, name="experiment_start_run"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/export.csv", views.run_export, name="run_export"),
    path("runs/export.json", views.run_export_json, name="run_export_json"),
    path("runs/compare", views.run_compare, name="run_compare"),
    path("runs/<int:run_id>/", views.run_page, name="run_detail"),
    path("runs/<int:run_id>/cancel", views.run_cancel, name="run_cancel"),
    path("runs/<int:run_id>/rerun", views.run_rerun, name="run_rerun"),
    path("runs/<int:run_id>/annotate", views.run_annotate, name="run_annotate"),
    path("api/experiments/<int:experiment_id>/runs", api.RunStartApi.as_view(), name="api_run_start"),
    path("api/runs", api.RunListApi.as_view(), name="api_runs"),
    path("api/runs/export.csv", api.RunExportApi.as_view(), name="api_runs_export"),
    path("api/runs/export.json", api.RunExportJsonApi.as_view(), name="api_runs_export_json"),
    path("api/runs/<int:run_id>/metrics.csv", api.RunMetricsCsvApi.as_view(), name="api_run_metrics_csv"),
    path("api/runs/<int:run_id>/metrics.json", api.RunMetricsJsonApi.as_view(), name="api_run_metrics_json"),
    path("api/runs/<int:run_id>", api.RunDetailApi.as_view(), name="api_run"),
    path("api/runs/<int:run_id>/metrics", api.RunMetricsApi.as_view(), name="api_run_metrics"),
    path("api/runs/<int:run_id>/evaluation", api.RunEvaluationApi.as_view(), name="api_run_evaluation"),
    path("api/runs/<int:run_id>/model", api.RunModelApi.as_view(), name="api_run_model"),
    path("api/runs/<int:run_id>/cancel", api.RunCancelApi.as_view(), name="api_run_cancel"),
    path("api/runs/<int:run_id>/evaluate", api.RunEvaluateApi.as_view(), name="api_run_evaluate"),
    path("runs/<int:run_id>/evaluate", views.run_evaluate, name="run_evaluate"),
]
