from django.urls import path

from . import api, views

urlpatterns = [
    path("experiments/", views.experiment_list, name="experiment_list"),
    path("experiments/new", views.experiment_create, name="experiment_create"),
    path("experiments/<int:experiment_id>/", views.experiment_detail, name="experiment_detail"),
    path("experiments/<int:experiment_id>/lr-finder", views.lr_finder_start, name="lr_finder_start"),
    path("api/experiments", api.ExperimentCreateApi.as_view(), name="api_experiments"),
    path("api/experiments/summary", api.ModelSummaryApi.as_view(), name="api_experiment_summary"),
    path("api/experiments/<int:experiment_id>", api.ExperimentDetailApi.as_view(), name="api_experiment"),
    path("api/experiments/<int:experiment_id>/lr-finder", api.LRFinderApi.as_view(), name="api_lr_finder"),
]
