from django.urls import path

from . import api, views

urlpatterns = [
    path("datasets/", views.dataset_list, name="dataset_list"),
    path("datasets/upload", views.dataset_upload, name="dataset_upload"),
    path("datasets/sample", views.dataset_sample, name="dataset_sample"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<int:dataset_id>/images/<int:index>.png", views.dataset_thumbnail, name="dataset_thumbnail"),
    path("datasets/<int:dataset_id>/mean.png", views.dataset_mean_image, name="dataset_mean_image"),
    path("datasets/<int:dataset_id>/delete", views.dataset_delete, name="dataset_delete"),
    path("datasets/<int:dataset_id>/versions/new", views.dataset_version_new, name="dataset_version_new"),
    path("api/datasets", api.DatasetListCreateApi.as_view(), name="api_datasets"),
    path("api/datasets/<int:dataset_id>", api.DatasetDetailApi.as_view(), name="api_dataset"),
    path("api/datasets/<int:dataset_id>/versions", api.DatasetVersionsApi.as_view(), name="api_dataset_versions"),
    path("api/datasets/<int:dataset_id>/images", api.DatasetImagesApi.as_view(), name="api_dataset_images"),
]
