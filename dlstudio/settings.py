"""dlstudio settings: one file, every knob from the environment (README, "Configuration", lists them).

A bad value stops the process at start-up with an ImproperlyConfigured error that names the
variable, rather than surfacing later as a confusing failure.
"""
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dlstudio.rates import parse_rate

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    value = os.environ.get(name, "")
    return value if value.strip() else default


def envbool(name, default):
    value = env(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name, default, *, minimum=None):
    value = env(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def envrate(name, default):
    value = env(name, default)
    try:
        parse_rate(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a rate such as 3000/min, not {value!r}") from None
    return value


def envlist(name, default):
    value = env(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else list(default)


DATA_DIR = Path(env("DLSTUDIO_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key():
    """DLSTUDIO_SECRET_KEY, else a key generated once and kept in the data dir."""
    key = env("DLSTUDIO_SECRET_KEY")
    if key:
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        # The processes of `make run` start together on a fresh data dir and race here: each writes a
        # whole key under a name of its own (mode 0600) and links it into place; the first link wins,
        # and every process reads that one, never a half-written file.
        fd, temporary = tempfile.mkstemp(dir=DATA_DIR, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(50))
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(temporary)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DLSTUDIO_DEBUG", False)

BIND = env("DLSTUDIO_BIND", "127.0.0.1:8000")
if ":" not in BIND:
    raise ImproperlyConfigured(f"DLSTUDIO_BIND must be host:port, not {BIND!r}")
_bind_host = BIND.rsplit(":", 1)[0].strip("[]")
ALLOWED_HOSTS = envlist("DLSTUDIO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", _bind_host])
if _bind_host in ("0.0.0.0", "::") and not env("DLSTUDIO_ALLOWED_HOSTS"):
    ALLOWED_HOSTS = ["*"]
CSRF_TRUSTED_ORIGINS = envlist("DLSTUDIO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.teams",
    "apps.datasets",
    "apps.weights",
    "apps.experiments",
    "apps.runs",
    "apps.sweeps",
    "apps.serving",
]

MIDDLEWARE = [
    "dlstudio.middleware.SecurityHeadersMiddleware",
    "dlstudio.middleware.PrivateApiMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "dlstudio.middleware.UploadLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.teams.middleware.CurrentTeamMiddleware",
]

ROOT_URLCONF = "dlstudio.urls"
WSGI_APPLICATION = "dlstudio.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.teams.context_processors.teams",
                "dlstudio.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}")
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL I understand: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes write to one file: WAL lets readers run beside a writer, IMMEDIATE
    # transactions take the write lock up front (no deadlock on upgrade), and the busy timeout
    # makes a writer wait for the lock instead of failing with "database is locked".
    # Kept open between requests: opening a SQLite connection and running its PRAGMAs costs more
    # than a small request itself (measured with bench/predict.py).
    _db["CONN_MAX_AGE"] = 600
    _db["CONN_HEALTH_CHECKS"] = False
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that Celery worker processes in the integration tests share it.
    _db["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, sessions, security ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

HTTPS = envbool("DLSTUDIO_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Scripts only from this site: every page's JavaScript is a file under static/js (no inline script or
# on* attribute anywhere; the figures' data sits in json_script blocks, which are never executed).
# Plotly sets inline styles on the SVG it draws, hence 'unsafe-inline' for styles only; blob: shows the
# images chosen on the predict page before they are sent.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
    "font-src 'self' data:", "connect-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
    "frame-ancestors 'none'",
])
AUTHENTICATION_BACKENDS = ["apps.teams.backends.ThrottledModelBackend"]
# Sign-in throttling (every way in: the page, POST /api/auth/token, the admin): after this many failed
# attempts for one username from one address, or 10 times as many from one address for any usernames,
# within the window, that address is refused for the rest of the window.
LOGIN_FAILURES_ALLOWED = envint("DLSTUDIO_LOGIN_FAILURES", 5, minimum=1)
LOGIN_FAILURE_WINDOW = envint("DLSTUDIO_LOGIN_WINDOW_SECONDS", 15 * 60, minimum=1)

MAX_UPLOAD_MB = envint("DLSTUDIO_MAX_UPLOAD_MB", 4096, minimum=1)
# What a team's datasets, checkpoints and weights files may take on the data disk together, in GB (10^9
# bytes); an upload or a checkpoint past it is refused (teams.selectors.team_usage).
TEAM_QUOTA_GB = envint("DLSTUDIO_TEAM_QUOTA_GB", 200, minimum=1)

# The most memory one run may need by the estimate of workers/engine/train/memory.py, in GB (10^9 bytes);
# a config over it is refused before it is saved or started. By default 80 % of this machine's memory:
# `make run` puts the training worker beside the web server and the other worker, and a run that needs
# more than that would only get its worker killed by the out-of-memory killer. Set it to the training
# machine's memory (or its GPU's) when the workers run elsewhere.
MAX_RUN_GB = envint("DLSTUDIO_MAX_RUN_GB",
                    max(1, int(0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 10**9)), minimum=1)
# Uploads above this go to a temporary file on disk, never into memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(exist_ok=True)
DATA_UPLOAD_MAX_NUMBER_FILES = 100

# --- Files ----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing root, even when finders serve everything
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dlstudio.staticfinders.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(DATA_DIR / "files")}},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Where uploads, packs, checkpoints and weights files are kept (docs/STORAGE.md). Empty (the default): the data
# dir, as every machine that mounts it sees it. `s3://BUCKET/PREFIX`
# (any S3-compatible store: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION),
# `azure://CONTAINER/PREFIX` (AZURE_CONNECTION_STRING) or `file:///another/folder`: an object store, which
# each machine reads through a cache of its own under the data dir, at most DLSTUDIO_CACHE_MAX_GB.
STORAGE_URL = env("DLSTUDIO_STORAGE_URL", "")
if STORAGE_URL and (STORAGE_URL.split("://", 1)[0] not in ("file", "s3", "azure") or "://" not in STORAGE_URL):
    raise ImproperlyConfigured(f"DLSTUDIO_STORAGE_URL must start with file://, s3:// or azure://, not {STORAGE_URL!r}")
CACHE_MAX_GB = envint("DLSTUDIO_CACHE_MAX_GB", 50, minimum=1)
AWS_ENDPOINT_URL = env("AWS_ENDPOINT_URL") or None
AWS_ACCESS_KEY_ID = env("AWS_ACCESS_KEY_ID") or None
AWS_SECRET_ACCESS_KEY = env("AWS_SECRET_ACCESS_KEY") or None
AWS_DEFAULT_REGION = env("AWS_DEFAULT_REGION") or env("AWS_REGION") or None
AZURE_CONNECTION_STRING = env("AZURE_CONNECTION_STRING") or None
# Serve straight from the finders too, so a checkout works before (or without) collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header turns "no credentials" into a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.teams.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "dlstudio.bounded_json.BoundedJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "dlstudio.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Requests per user (per address when anonymous) in fixed windows; dlstudio/throttling.py says
    # which endpoints count under which scope. A 429 says when to try again (Retry-After).
    "DEFAULT_THROTTLE_CLASSES": ["dlstudio.throttling.ApiRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": envrate("DLSTUDIO_API_RATE", "3000/min"),
        "poll": envrate("DLSTUDIO_POLL_RATE", "6000/min"),
        "predict": envrate("DLSTUDIO_PREDICT_RATE", "30000/min"),
        "inspect": envrate("DLSTUDIO_INSPECT_RATE", "600/min"),
        "anon": envrate("DLSTUDIO_ANON_RATE", "300/min"),
    },
    # Behind a reverse proxy that appends the client's address to X-Forwarded-For: how many proxies.
    "NUM_PROXIES": envint("DLSTUDIO_NUM_PROXIES", 0, minimum=0),
}

# The OpenAPI schema (GET /api/schema/) and its page (/api/docs/), for signed-in users; Swagger UI is
# served from this site's static files (drf-spectacular-sidecar), its script apart from the page so the
# CSP above holds there too.
SPECTACULAR_SETTINGS = {
    "TITLE": "dlstudio API",
    "DESCRIPTION": ("Upload labelled image datasets, define CNN experiments, train and compare runs, predict with "
                    "trained models. Authenticate with a session or `Authorization: Token <key>` (a key from your "
                    "profile page, or from POST /api/auth/token). Objects of a team you are not in answer 404; "
                    "viewers read, editors and owners act. Every error is `{\"error\": \"<one sentence>\", "
                    "\"field\": \"<name, when one field is wrong>\"}`."),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": "/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "dlstudio.openapi.common_errors"],
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "apps.runs.models.Run.Status",
        "DatasetStatusEnum": "apps.datasets.models.Dataset.Status",
        "LRFindingStatusEnum": "apps.experiments.models.LRFinding.Status",
        "ServiceStateEnum": ["ok", "unavailable"],
    },
}

# --- Celery ---------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
if urlparse(REDIS_URL).scheme not in ("redis", "rediss", "unix"):
    raise ImproperlyConfigured(f"REDIS_URL must be a redis:// URL, not {REDIS_URL!r}")


def _cache_url(redis_url: str) -> str:
    """The broker's Redis server, next database: the throttles' counters never mix with Celery's
    queues, and clearing the cache (tests do) never empties a queue."""
    parsed = urlparse(redis_url)
    if parsed.scheme == "unix":
        return redis_url  # a socket path: the same database, told apart by the keys' prefix
    db = int(parsed.path.strip("/") or 0)
    return parsed._replace(path=f"/{db + 1 if db < 15 else db - 1}").geturl()


# The throttles' counters, shared by every web process (gunicorn runs several). When Redis does not
# answer, dlstudio.throttling falls back to the process's own memory ("local") for a while.
CACHE_URL = env("DLSTUDIO_CACHE_URL", None) or _cache_url(REDIS_URL)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
        "KEY_PREFIX": "dlstudio", "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    } if CACHE_URL != "locmem" else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "local"},
}
STALE_AFTER = envint("DLSTUDIO_STALE_AFTER", 60, minimum=5)
WORKER_QUEUES = envlist("DLSTUDIO_WORKER_QUEUES", ["default", "ingest", "train"])
_unknown_queues = set(WORKER_QUEUES) - {"default", "ingest", "train"}
if _unknown_queues:
    raise ImproperlyConfigured(
        f"DLSTUDIO_WORKER_QUEUES may name default, ingest and train, not {', '.join(sorted(_unknown_queues))}")

# --- Processes ------------------------------------------------------------------------------
# gunicorn (dlstudio/gunicorn_conf.py): threads rather than many processes, since each process holds its
# own cache of loaded models.
WEB_WORKERS = envint("DLSTUDIO_WEB_WORKERS", 2, minimum=1)
WEB_THREADS = envint("DLSTUDIO_WEB_THREADS", 4, minimum=1)
# Predicting in the web process (apps/serving/predictors.py): how many trained models each process keeps
# loaded, and PyTorch's threads per process (1 answers one small image per request fastest).
PREDICT_CACHE_SIZE = envint("DLSTUDIO_PREDICT_CACHE", 8, minimum=1)
PREDICT_THREADS = envint("DLSTUDIO_PREDICT_THREADS", 1, minimum=1)
# Recorded on every run; unset, the git commit of the checkout (dlstudio/version.py).
CODE_VERSION = env("DLSTUDIO_CODE_VERSION")
# The `admin` user's password on first run (`make run`); unset, one is generated and printed once.
ADMIN_PASSWORD = env("DLSTUDIO_ADMIN_PASSWORD")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DLSTUDIO_LOG_LEVEL", "INFO")},
    # The Azure SDK logs every request's and response's headers at INFO: dozens of lines per stored file.
    "loggers": {"django.db.backends": {"level": "INFO"},
                "azure.core.pipeline.policies.http_logging_policy": {"level": "WARNING"}},
}
