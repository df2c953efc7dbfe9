from django.contrib import admin
from django.conf import settings
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponseBadRequest, HttpResponseNotFound
from django.shortcuts import render
from django.urls import include, path

from apps.datasets import api as datasets_api
from apps.experiments import api as experiments_api
from apps.teams import api as teams_api

from . import views
from .api_errors import json_error

api_patterns = [
    path("health", views.HealthApi.as_view(), name="api_health"),
    path("auth/token", teams_api.TokenObtainApi.as_view(), name="api_token"),
    path("teams", teams_api.TeamListApi.as_view(), name="api_teams"),
    *datasets_api.urlpatterns,
    *experiments_api.urlpatterns,
    *experiments_api.predict_urlpatterns,
]

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("apps.teams.urls")),
    path("", include("apps.datasets.urls")),
    path("", include("apps.experiments.urls")),
    path("", include("apps.experiments.weights_urls")),
    path("", include("apps.experiments.lr_urls")),
    path("api/", include(api_patterns)),
    path("admin/", admin.site.urls),
]


def handler400(request, exception=None):
    """A request Django refused while reading it (too many files or fields, a malformed body)."""
    message = "The request was refused as malformed."
    if isinstance(exception, TooManyFilesSent):
        message = f"Send at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files in one request."
    elif isinstance(exception, TooManyFieldsSent):
        message = "The request has too many fields."
    if request.path.startswith("/api/"):
        return json_error(request, message, 400)
    return HttpResponseBadRequest(render(request, "400.html", {"message": message}).content)


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return json_error(request, "Not found.", 404)
    return HttpResponseNotFound(render(request, "404.html").content)


def handler500(request):
    if request.path.startswith("/api/"):
        return json_error(request, "Something went wrong on the server; the error has been logged.", 500)
    response = render(request, "500.html")
    response.status_code = 500
    return response
