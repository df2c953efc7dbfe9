from django.urls import path

from . import export_views, run_views, views

urlpatterns = [
    path("experiments/", views.experiment_list, name="experiment_list"),
    path("experiments/new", views.experiment_create, name="experiment_create"),
    path("experiments/<int:experiment_id>/", views.experiment_detail, name="experiment_detail"),
    path("experiments/<int:experiment_id>/runs", views.experiment_start_run, name="experiment_start_run"),
    path("runs/", run_views.run_list, name="run_list"),
    path("runs/compare", run_views.run_compare, name="run_compare"),
    path("runs/<int:run_id>/", run_views.run_page, name="run_detail"),
    path("runs/<int:run_id>/cancel", run_views.run_cancel, name="run_cancel"),
    path("runs/<int:run_id>/rerun", run_views.run_rerun, name="run_rerun"),
    path("runs/<int:run_id>/annotate", run_views.run_annotate, name="run_annotate"),
    path("runs/<int:run_id>/predict", export_views.run_predict_page, name="run_predict"),
    path("runs/<int:run_id>/export/checkpoint", export_views.run_export_checkpoint, name="run_export_checkpoint"),
    path("runs/<int:run_id>/export/onnx", export_views.run_export_onnx, name="run_export_onnx"),
    path("runs/<int:run_id>/export/model-card", export_views.run_export_model_card, name="run_export_model_card"),
]
