"""Request throttling: fixed-window counters in the cache, with a fallback when Redis is away.

Scopes (rates in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], each from the environment):
  - `user`: every API request of a signed-in user (DLSTUDIO_API_RATE, 3000/min);
  - `poll`: the reads the pages poll while something runs — a run, its metrics, a dataset, the LR
    finder (DLSTUDIO_POLL_RATE, 6000/min), so open pages never eat a script's budget or the reverse;
  - `predict`: POST /api/runs/<id>/predict (DLSTUDIO_PREDICT_RATE, 30000/min), counted in the web
    process's own memory: predicting must stay a matter of milliseconds and must not need Redis
    (issue 6; bench/predict.py sends 469 requests/s from one user), so its ceiling is per process
    and only stops a runaway loop;
  - `inspect`: what costs a network's build or a backward pass, explain, activations and model
    summaries (DLSTUDIO_INSPECT_RATE, 600/min): a heavy network's heatmap takes a good part of a
    second of a core, and the misclassified gallery asks for up to 120 at once;
  - `anon`: requests without credentials, per address (DLSTUDIO_ANON_RATE, 300/min): the health check
    and POST /api/auth/token (which the sign-in throttle guards as well).

A counter is one cache key per (scope, user or address, window): `add` then `incr`, two round trips
and no list of timestamps, however high the rate. The shared counters live in the Redis cache, so
every web process counts together; when Redis does not answer they are counted in the process's own
memory for the next FALLBACK_SECONDS, and a request is never refused because the cache is down.
"""
import logging
import math
import time

from django.core.cache import caches
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from .rates import parse_rate

log = logging.getLogger(__name__)

FALLBACK_SECONDS = 30
# Which endpoints count under which scope (URL names); all others count under `user`.
POLL_VIEWS = {"api_run", "api_run_metrics", "api_dataset", "api_lr_finder"}
SCOPE_OF_VIEW = {"api_run_predict": "predict",
                 **dict.fromkeys(("api_run_explain", "api_run_explain_image", "api_run_activations",
                                  "api_experiment_summary", "api_run_model"), "inspect")}
LOCAL_SCOPES = {"predict"}

_shared_down_until = 0.0


def _cache(scope: str):
    if scope in LOCAL_SCOPES or time.monotonic() < _shared_down_until:
        return caches["local"]
    return caches["default"]


def hit(scope: str, ident: str, rate: str, *, now: float | None = None) -> float:
    """Count one request; 0 when it is allowed, else the seconds until the window ends."""
    global _shared_down_until
    limit, period = parse_rate(rate)
    now = time.time() if now is None else now
    window = int(now // period)
    key = f"throttle:{scope}:{ident}:{window}"
    cache = _cache(scope)
    try:
        cache.add(key, 0, timeout=period + 1)
        count = cache.incr(key)
    except ValueError:  # the key expired between add and incr
        count = 1
    except Exception:  # Redis away: count locally for a while rather than fail every request
        log.warning("the throttle cache does not answer; counting in this process for %ss", FALLBACK_SECONDS,
                    exc_info=True)
        _shared_down_until = time.monotonic() + FALLBACK_SECONDS
        return hit(scope, ident, rate, now=now) if cache is not caches["local"] else 0.0
    if count <= limit:
        return 0.0
    return (window + 1) * period - now


def scope_of(request, view) -> str:
    if not request.user or not request.user.is_authenticated:
        return "anon"
    name = getattr(getattr(request, "resolver_match", None), "url_name", None)
    if name in SCOPE_OF_VIEW:
        return SCOPE_OF_VIEW[name]
    if name in POLL_VIEWS and request.method == "GET":
        return "poll"
    return "user"


class ApiRateThrottle(BaseThrottle):
    """DRF's throttle for every API view: the scope above, one counter per user (address if anonymous)."""

    def allow_request(self, request, view):
        scope = scope_of(request, view)
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
        if not rate:
            return True
        ident = f"user{request.user.pk}" if scope != "anon" else f"ip{self.get_ident(request)}"
        self.seconds = hit(scope, ident, rate)
        return not self.seconds

    def wait(self):
        return max(1, math.ceil(self.seconds))
