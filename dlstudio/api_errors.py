"""Every API error has one shape: {"error": "<one sentence>", "field": "<name>" when one field is wrong}."""
import math

from django.conf import settings
from django.core.exceptions import PermissionDenied, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

MESSAGES = {
    status.HTTP_401_UNAUTHORIZED:
        "Sign in, or send an API token as 'Authorization: Token <key>' (create one on your profile page).",
    status.HTTP_404_NOT_FOUND: "Not found.",
}


def _first_message(detail):
    """The first (field, message) pair of a DRF error detail, however nested."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field, message = _first_message(value)
            if key in ("non_field_errors", "__all__", "detail"):
                return field, message
            return (f"{key}.{field}" if field else key), message
        return None, "The request is not valid."
    if isinstance(detail, (list, tuple)):
        return _first_message(detail[0]) if detail else (None, "The request is not valid.")
    return None, str(detail)


def error_body(message: str, field: str | None = None) -> dict:
    body = {"error": message}
    if field:
        body["field"] = field
    return body


def _refused(exc: SuspiciousOperation) -> str:
    if isinstance(exc, TooManyFilesSent):
        return f"Send at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files in one request."
    if isinstance(exc, TooManyFieldsSent):
        return "The request has too many fields."
    return "The request was refused as malformed."


def exception_handler(exc, context):
    # Django's request-parsing guards (too many files or fields, ...) arrive here while DRF parses.
    if isinstance(exc, SuspiciousOperation):
        exc = exceptions.ValidationError(_refused(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: let Django answer 500 (JSON under /api/, see urls.handler500)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))

    if isinstance(exc, exceptions.Throttled):
        field, message = None, getattr(exc, "sentence", None) or throttled_message(exc.wait)
    elif isinstance(exc, exceptions.ValidationError):
        field, message = _first_message(exc.detail)
    elif isinstance(exc, exceptions.NotAuthenticated):
        field, message = None, MESSAGES[status.HTTP_401_UNAUTHORIZED]
    elif isinstance(exc, exceptions.NotFound):
        field, message = None, MESSAGES[status.HTTP_404_NOT_FOUND]
    else:
        field, message = _first_message(exc.detail)
    set_rollback()
    return Response(error_body(message, field), status=exc.status_code, headers=headers)


def throttled_message(wait: float | None) -> str:
    seconds = max(1, math.ceil(wait or 1))
    when = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    return f"Too many requests; try again in {when}."


def json_error(request, message: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(message), status=status_code)
