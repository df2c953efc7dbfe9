from django.urls import path

from . import weights_api, weights_views

urlpatterns = [
    path("weights/", weights_views.weights_list, name="weights_list"),
    path("weights/upload", weights_views.weights_upload, name="weights_upload"),
    path("weights/<int:weights_id>/delete", weights_views.weights_delete, name="weights_delete"),
    path("api/weights", weights_api.WeightsListCreateApi.as_view(), name="api_weights"),
    path("api/weights/<int:weights_id>", weights_api.WeightsDetailApi.as_view(), name="api_weights_file"),
]
