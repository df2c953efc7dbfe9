from django.contrib import admin
from django.conf import settings
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponseBadRequest, HttpResponseNotFound
from django.shortcuts import render
from django.urls import include, path

from . import views
from .api_errors import json_error

# Each app's urls.py holds its pages and its API (under api/); this file only puts them together.
urlpatterns = [
    path("", views.home, name="home"),
    path("api/health", views.HealthApi.as_view(), name="api_health"),
    path("api/schema/", views.SchemaApi.as_view(), name="api_schema"),
    path("api/docs/", views.SchemaDocs.as_view(url_name="api_schema"), name="api_docs"),
    path("", include("apps.teams.urls")),
    path("", include("apps.datasets.urls")),
    path("", include("apps.weights.urls")),
    path("", include("apps.experiments.urls")),
    path("", include("apps.runs.urls")),
    path("", include("apps.sweeps.urls")),
    path("", include("apps.serving.urls")),
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
