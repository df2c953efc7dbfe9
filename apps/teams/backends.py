"""Django's ModelBackend behind the sign-in throttle (login_throttle.py): every password check counts."""
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from . import login_throttle


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None or username is None:  # the test client's login(), management commands
            return super().authenticate(request, username=username, password=password, **kwargs)
        address = login_throttle.client_address(request)
        wait = login_throttle.attempt(username, address)
        if wait:
            request.login_refused_for = wait
            raise PermissionDenied(login_throttle.refusal(wait))  # authenticate() stops here: no password check
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            login_throttle.succeeded(username, address)
        return user
