"""Every API error has one shape: {"error": "<one sentence>", "field": "<name>" when one field is wrong}.

Views raise and let this handler answer: DRF's own errors, Django's 404 and PermissionDenied, and a
service's `django.core.exceptions.ValidationError`, whose `code` names the field it is about
(`config.lr`, `archive`), so no view translates a service's refusal by hand.
"""
import math

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent, ValidationError,
)
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

MESSAGES = {
    status.HTTP_401_UNAUTHORIZED:
        "Sign in, or send an API token as 'Authorization: Token <key>' (create one on your profile page).",
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


def _service_refusal(exc: ValidationError):
    """A service's ValidationError as DRF detail: its first message, under its code when that names a field."""
    field = exc.code if isinstance(getattr(exc, "code", None), str) else None
    return {field: exc.messages[:1]} if field else exc.messages[:1]


def exception_handler(exc, context):
    # Django's request-parsing guards (too many files or fields, ...) arrive here while DRF parses.
    if isinstance(exc, SuspiciousOperation):
        exc = exceptions.ValidationError(_refused(exc))
    elif isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(_service_refusal(exc))
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
    elif isinstance(exc, exceptions.NotFound):  # "Not found.", or what a view says is missing
        field, message = None, str(exc.detail)
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
