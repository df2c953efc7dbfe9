from django.urls import path

from . import api, views

urlpatterns = [
    path("weights/", views.weights_list, name="weights_list"),
    path("weights/upload", views.weights_upload, name="weights_upload"),
    path("weights/<int:weights_id>/delete", views.weights_delete, name="weights_delete"),
    path("api/weights", api.WeightsListCreateApi.as_view(), name="api_weights"),
    path("api/weights/<int:weights_id>", api.WeightsDetailApi.as_view(), name="api_weights_file"),
]
