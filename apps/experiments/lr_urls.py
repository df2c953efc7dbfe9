from django.urls import path

from . import lr_views

urlpatterns = [
    path("experiments/<int:experiment_id>/lr-finder", lr_views.lr_finder_start, name="lr_finder_start"),
    path("api/experiments/<int:experiment_id>/lr-finder", lr_views.LRFinderApi.as_view(), name="api_lr_finder"),
]
