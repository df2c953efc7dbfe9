from django.urls import path

from . import api, views

urlpatterns = [
    path("runs/<int:run_id>/predict", views.run_predict_page, name="run_predict"),
    path("runs/<int:run_id>/export/checkpoint", views.run_export_checkpoint, name="run_export_checkpoint"),
    path("runs/<int:run_id>/export/onnx", views.run_export_onnx, name="run_export_onnx"),
    path("runs/<int:run_id>/export/model-card", views.run_export_model_card, name="run_export_model_card"),
    path("runs/<int:run_id>/filters.png", views.run_filters_png, name="run_filters_png"),
    path("api/runs/<int:run_id>/predict", api.RunPredictApi.as_view(), name="api_run_predict"),
    path("api/runs/<int:run_id>/explain", api.RunExplainApi.as_view(), name="api_run_explain"),
    path("api/runs/<int:run_id>/explain/<int:index>", api.RunExplainDatasetImageApi.as_view(),
         name="api_run_explain_image"),
    path("api/runs/<int:run_id>/activations", api.RunActivationsApi.as_view(), name="api_run_activations"),
]
