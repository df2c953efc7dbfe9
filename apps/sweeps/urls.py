from django.urls import path

from . import api, views

urlpatterns = [
    path("experiments/<int:experiment_id>/sweeps", views.sweep_start, name="sweep_start"),
    path("sweeps/<int:sweep_id>/", views.sweep_page, name="sweep_detail"),
    path("sweeps/<int:sweep_id>/charts", views.sweep_charts, name="sweep_charts"),
    path("sweeps/<int:sweep_id>/cancel", views.sweep_cancel, name="sweep_cancel"),
    path("sweeps/<int:sweep_id>/adopt", views.sweep_adopt, name="sweep_adopt"),
    path("api/sweeps", api.SweepListApi.as_view(), name="api_sweeps"),
    path("api/sweeps/<int:sweep_id>", api.SweepDetailApi.as_view(), name="api_sweep"),
    path("api/sweeps/<int:sweep_id>/cancel", api.SweepCancelApi.as_view(), name="api_sweep_cancel"),
]
