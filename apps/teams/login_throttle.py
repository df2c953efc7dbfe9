"""Sign-in throttling: failed attempts counted per username and address, and per address.

After settings.LOGIN_FAILURES_ALLOWED failures for one username from one address within
settings.LOGIN_FAILURE_WINDOW seconds (5 in 15 minutes), or ten times as many from one address
whatever the usernames (password spraying), that address is refused until the window ends. A
success clears its username's count. Counting happens in the authentication backend
(`backends.ThrottledModelBackend`), so every way in is covered — the sign-in page, POST
/api/auth/token, the admin; the backend marks a refused request (`request.login_refused_for`) so
the page and the API answer with a sentence, a 429 and Retry-After instead of "wrong password".

The counts live in the default cache (Redis, shared by every web process); when it does not answer,
sign-in works unthrottled rather than not at all, and the failure is logged.
"""
import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

log = logging.getLogger(__name__)
SPRAY_FACTOR = 10
clock = time.time  # what the windows are measured by (a test moves it forward)


def client_address(request) -> str:
    """The client's address as DRF's throttles see it (REMOTE_ADDR, or X-Forwarded-For behind
    DLSTUDIO_NUM_PROXIES proxies)."""
    return BaseThrottle().get_ident(request) or "unknown"


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    """(cache key, allowed failures) of each counter an attempt falls under."""
    pair = hashlib.sha256(f"{username.strip().lower()}\0{address}".encode()).hexdigest()[:32]
    spray = hashlib.sha256(address.encode()).hexdigest()[:32]
    allowed = settings.LOGIN_FAILURES_ALLOWED
    return [(f"login-failures:pair:{pair}", allowed), (f"login-failures:address:{spray}", allowed * SPRAY_FACTOR)]


def attempt(username: str, address: str) -> float:
    """Count one sign-in attempt before its password is checked; the seconds until this username may
    try again from this address when it is over the limit, else 0.

    Counting first (atomically: add, then incr) means a burst of parallel attempts cannot all pass a
    check made before any of them is counted; a success takes its attempt back (`succeeded`)."""
    now = clock()
    window = settings.LOGIN_FAILURE_WINDOW
    wait = 0.0
    try:
        for key, allowed in _keys(username, address):
            since = cache.get(f"{key}:since")
            if since is not None and now >= since + window:  # over, though the cache has not expired it yet
                cache.delete_many([f"{key}:since", f"{key}:count"])
            if cache.add(f"{key}:since", now, timeout=window):  # a new window: any older count is void
                cache.set(f"{key}:count", 0, timeout=window)
            since = cache.get(f"{key}:since", now)
            left = max(1, math.ceil(since + window - now))
            cache.add(f"{key}:count", 0, timeout=left)
            try:
                count = cache.incr(f"{key}:count")
            except ValueError:  # expired in between: a new window
                cache.set(f"{key}:count", 1, timeout=left)
                count = 1
            if count > allowed:
                wait = max(wait, since + window - now, 1.0)
    except Exception:
        log.warning("the sign-in throttle's cache does not answer; not throttling", exc_info=True)
        return 0.0
    return wait


def succeeded(username: str, address: str) -> None:
    """A right password: forget this username's failures from this address, and take the attempt back
    from the address's count."""
    try:
        (pair, _), (spray, _) = _keys(username, address)
        cache.delete_many([f"{pair}:since", f"{pair}:count"])
        try:
            cache.decr(f"{spray}:count")
        except ValueError:
            pass
    except Exception:
        log.warning("the sign-in throttle's cache does not answer", exc_info=True)


def refusal(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return (f"Too many failed sign-ins from your address; try again in {minutes} minute{'s' if minutes != 1 else ''}"
            " (or ask an owner of your team to reset your password).")
