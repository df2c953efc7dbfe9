from django.urls import path

from . import api, views

urlpatterns = [
    path("runs/<int:run_id>/predict", views.run_predict_page, name="run_predict"),
    path("runs/<int:run_id>/export/checkpoint", views.run_export_checkpoint, name="run_export_checkpoint"),
    path("runs/<int:run_id>/export/onnx", views.run_export_onnx, name="run_export_onnx"),
    path("runs/<int:run_id>/export/model-card", views.run_export_model_card, name="run_export_model_card"),
    path("api/runs/<int:run_id>/predict", api.RunPredictApi.as_view(), name="api_run_predict"),
]
