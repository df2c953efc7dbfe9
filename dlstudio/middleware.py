from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


class UploadLimitMiddleware:
    """Refuse a request body over DLSTUDIO_MAX_UPLOAD_MB with 413 before a byte of it is read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit_mb = settings.MAX_UPLOAD_MB
        if length > limit_mb * 2**20:
            message = f"The upload is larger than the limit of {limit_mb} MB (DLSTUDIO_MAX_UPLOAD_MB)."
            if request.path.startswith("/api/"):
                return JsonResponse({"error": message}, status=413)
            return render(request, "413.html", {"message": message}, status=413)
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """The Content-Security-Policy and X-Frame-Options on every answer, static files, JSON and error
    pages included.

    Outermost in MIDDLEWARE, so an answer made by an inner middleware (the 413 above, WhiteNoise's
    static files) gets them too: XFrameOptionsMiddleware sits further in and never sees those.
    SecurityMiddleware, next inside, already sets nosniff, Referrer-Policy and COOP on everything.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", settings.X_FRAME_OPTIONS)
        return response


class PrivateApiMiddleware:
    """API answers are one account's data: no shared cache may keep them, and none may serve one account's
    answer to another (`Vary`). An answer that sets its own Cache-Control keeps it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "private, no-store")
            patch_vary_headers(response, ("Authorization", "Cookie"))
        return response
