"""DataFlow settings.

Every value comes from the environment (or a ``.env`` file next to
``manage.py``) through django-environ; ``.env.example`` lists and explains
each variable. Defaults suit a single machine with SQLite; production only
tightens them.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import TypedDict

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from .env import BASE_DIR, env
from .env import env_bool as _bool
from .env import env_float as _float
from .env import env_int as _int
from .env import env_list as _list
from .env import env_required as _required
from .env import env_str as _str
from .storage import data_storage_config

DEBUG = _bool("DEBUG", False)
SECRET_KEY = _required("SECRET_KEY")
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", [])

# --- HTTPS and browser security ----------------------------------------------
# On by default; set HTTPS=false only to serve plain HTTP on a trusted machine
# (make run's .env does, for http://127.0.0.1).
HTTPS = _bool("HTTPS", True)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", HTTPS)
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto.
if _bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^health/"]  # probes talk plain HTTP inside the network
SECURE_CONTENT_TYPE_NOSNIFF = True
# Overridable for a deployment that must allow more (e.g. an SSO script).
CONTENT_SECURITY_POLICY = _str("CONTENT_SECURITY_POLICY", "") or (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Files -----------------------------------------------------------------
DATA_DIR = (BASE_DIR / _str("DATA_DIR", "data")).resolve()

INSTALLED_APPS = [
    "dataflow.apps.DataflowAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_q",
    "health_check",
    "axes",
    "core",
    "ingestion",
    "processing",
    "api",
]

MIDDLEWARE = [
    "dataflow.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "dataflow.logging.RequestIdMiddleware",
    # Before anything parses a body (the CSRF check reads POST): 415 for a charset that is no text encoding.
    "dataflow.security.RequestCharsetMiddleware",
    "dataflow.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout response.
    "axes.middleware.AxesMiddleware",
]

# --- Brute-force protection (django-axes) ------------------------------------
# Failed logins on the admin and the API token endpoint are counted per
# username *and* client address, so an attacker locks out only their own
# attempts on that account, never other people. Behind a reverse proxy, set
# TRUSTED_PROXY_COUNT so the client address comes from X-Forwarded-For.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = _int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_PROXY_COUNT = _int("TRUSTED_PROXY_COUNT", 0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if _int("TRUSTED_PROXY_COUNT", 0) else ("REMOTE_ADDR",)
)
AXES_VERBOSE = False

ROOT_URLCONF = "dataflow.urls"
WSGI_APPLICATION = "dataflow.wsgi.application"

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
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------
DATABASES = {
    "default": env.db_url_config(_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'dataflow.sqlite3'}")),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default must work on a fresh clone: make its folder.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web process read while the worker writes; IMMEDIATE
    # transactions take the write lock up front instead of failing mid-way.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", _int("CONN_MAX_AGE", 60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = _str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = (BASE_DIR / _str("STATIC_ROOT", "staticfiles")).resolve()

STORAGES = {
    # Raw, processed and archived files: local disk under DATA_DIR, or an S3
    # bucket (DATA_STORAGE_URL=s3://BUCKET/PREFIX) shared by several machines.
    "dataflow": data_storage_config(env.ENVIRON, DATA_DIR),
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


# --- Pipeline ----------------------------------------------------------------
class _PipelineSettings(TypedDict):
    """The keys of ``DATAFLOW`` and their types, so code reading them is checked."""

    CHUNK_SIZE: int
    MAX_FIELD_SIZE: int
    MAX_UPLOAD_SIZE: int
    MAX_COLUMNS: int
    WORK_DIR: Path
    NICE: int
    TABLE_SCHEMA: str
    PROFILE: bool


DATAFLOW: _PipelineSettings = {
    # Rows validated and committed together; memory use grows with it.
    "CHUNK_SIZE": _int("PIPELINE_CHUNK_SIZE", 10_000, minimum=1),
    # Largest single CSV value (characters); longer values reject the row.
    "MAX_FIELD_SIZE": _int("PIPELINE_MAX_FIELD_SIZE", 65_536, minimum=1),
    # Largest accepted upload in bytes.
    "MAX_UPLOAD_SIZE": _int("MAX_UPLOAD_SIZE", 200 * 1024 * 1024, minimum=1),
    # Most columns a file's header may have; a wider file fails before any row is read.
    "MAX_COLUMNS": _int("PIPELINE_MAX_COLUMNS", 1_000, minimum=1),
    # Local scratch space for files being written (processed output).
    "WORK_DIR": DATA_DIR / "work",
    # Niceness added to the validating processes (or thread), so that web
    # requests on the same cores go first; 0 leaves them as the worker is.
    "NICE": _int("PIPELINE_NICE", 10, minimum=0),
    # PostgreSQL schema holding one typed table per dataset (docs/sql.md).
    "TABLE_SCHEMA": _str("DATASETS_DB_SCHEMA", "datasets"),
    # Profile each run's valid rows as they are validated (docs/quality.md).
    "PROFILE": _bool("PIPELINE_PROFILE", True),
}
if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", DATAFLOW["TABLE_SCHEMA"]):
    raise ImproperlyConfigured(
        "DATASETS_DB_SCHEMA must be a lowercase SQL name (letters, digits, underscores, at most 63), "
        f"got {DATAFLOW['TABLE_SCHEMA']!r}"
    )
if DATAFLOW["NICE"] > 19:
    raise ImproperlyConfigured(f"PIPELINE_NICE must be at most 19 (the lowest priority), got {DATAFLOW['NICE']}")

# --- HTTP sources, push ingestion and notifications ----------------------------
# Fernet keys (comma-separated, newest first) that encrypt sources' secrets
# at rest. The first encrypts; all of them decrypt, so a key can rotate:
# put the new key first, run `manage.py rotate_source_secrets`, then drop
# the old one. Generate one with `manage.py generate_encryption_key`.
ENCRYPTION_KEYS = _list("ENCRYPTION_KEYS", [])
if not ENCRYPTION_KEYS:
    _required("ENCRYPTION_KEYS")
for _key in ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "ENCRYPTION_KEYS holds a value that is not a Fernet key (32 bytes, url-safe base64); "
            "generate one with `python manage.py generate_encryption_key`"
        ) from None


class _SourceSettings(TypedDict):
    """The keys of ``SOURCES`` and their types, so code reading them is checked."""

    CONNECT_TIMEOUT: float
    READ_TIMEOUT: float
    DEADLINE: float
    MAX_RETRIES: int
    BACKOFF_BASE: float
    BACKOFF_MAX: float
    RETRY_AFTER_MAX: float
    MAX_RESPONSE_BYTES: int
    MAX_REDIRECTS: int
    ALLOWED_NETWORKS: list[str]
    DNS_TIMEOUT: float


SOURCES: _SourceSettings = {
    "CONNECT_TIMEOUT": _float("SOURCE_CONNECT_TIMEOUT", 10.0, minimum=0.01),
    "READ_TIMEOUT": _float("SOURCE_READ_TIMEOUT", 30.0, minimum=0.01),
    # Wall-clock limit for one whole pull (every page, retry and wait).
    "DEADLINE": _float("SOURCE_DEADLINE", 600.0, minimum=0.1),
    # Retries per request after a connection error, 429 or 5xx.
    "MAX_RETRIES": _int("SOURCE_MAX_RETRIES", 4),
    # Exponential backoff: BACKOFF_BASE * 2**attempt seconds, with jitter, at most BACKOFF_MAX.
    "BACKOFF_BASE": _float("SOURCE_BACKOFF_BASE", 1.0),
    "BACKOFF_MAX": _float("SOURCE_BACKOFF_MAX", 60.0),
    # A Retry-After longer than this is cut down to it.
    "RETRY_AFTER_MAX": _float("SOURCE_RETRY_AFTER_MAX", 120.0),
    # Largest response body, enforced while streaming.
    "MAX_RESPONSE_BYTES": _int("SOURCE_MAX_RESPONSE_BYTES", 50 * 1024 * 1024, minimum=1),
    "MAX_REDIRECTS": _int("SOURCE_MAX_REDIRECTS", 5),
    # Networks (CIDR) a source or webhook may reach although they are private,
    # loopback or reserved, e.g. "10.20.0.0/16" for an on-premise API.
    "ALLOWED_NETWORKS": _list("SOURCE_ALLOWED_NETWORKS", []),
    # Seconds a host name may take to resolve when a source or webhook is saved; a name
    # still unresolved by then is accepted and checked when connecting, as every name is.
    "DNS_TIMEOUT": _float("SOURCE_DNS_TIMEOUT", 2.0, minimum=0.01),
}


class _StreamSettings(TypedDict):
    """The keys of ``STREAMS`` and their types, so code reading them is checked."""

    BATCH_ROWS: int
    BATCH_SECONDS: float
    RUN_WINDOW_SECONDS: float
    CLAIM_IDLE_SECONDS: float
    BACKOFF_MAX: float


# Stream sources (Redis Streams, NATS JetStream), read by `manage.py consume`.
STREAMS: _StreamSettings = {
    # A micro-batch holds at most this many messages ...
    "BATCH_ROWS": _int("STREAM_BATCH_ROWS", 5000, minimum=1),
    # ... and waits at most this long for them to arrive.
    "BATCH_SECONDS": _float("STREAM_BATCH_SECONDS", 0.5, minimum=0.01),
    # A run covers this much time; the next batch after it starts a new run.
    "RUN_WINDOW_SECONDS": _float("STREAM_RUN_WINDOW_SECONDS", 300.0, minimum=1.0),
    # A message delivered to a consumer that has not acknowledged it for this long
    # (the consumer died) is claimed by another (Redis XAUTOCLAIM; NATS ack wait).
    "CLAIM_IDLE_SECONDS": _float("STREAM_CLAIM_IDLE_SECONDS", 60.0, minimum=0.1),
    # A consumer that cannot reach its broker retries, waiting up to this long between tries.
    "BACKOFF_MAX": _float("STREAM_BACKOFF_MAX", 30.0, minimum=0.1),
}
# Pushed batches up to this many rows are processed within the request.
PUSH_SYNC_MAX_ROWS = _int("PUSH_SYNC_MAX_ROWS", 1000, minimum=0)
# Largest pushed request body in bytes.
PUSH_MAX_BYTES = _int("PUSH_MAX_BYTES", 20 * 1024 * 1024, minimum=1)
# Notified for every dataset when a run fails (besides each dataset's own).
NOTIFY_WEBHOOKS = _list("NOTIFY_WEBHOOKS", [])
NOTIFY_EMAILS = _list("NOTIFY_EMAILS", [])
NOTIFY_ON_SUCCESS = _bool("NOTIFY_ON_SUCCESS", False)
NOTIFY_TIMEOUT = _float("NOTIFY_TIMEOUT", 5.0, minimum=0.01)
EMAIL_BACKEND = _str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = _str("EMAIL_HOST", "localhost")
EMAIL_PORT = _int("EMAIL_PORT", 25)
EMAIL_HOST_USER = _str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = _bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = _str("DEFAULT_FROM_EMAIL", "dataflow@localhost")

# Uploads stop as soon as a file passes MAX_UPLOAD_SIZE (core/uploads.py).
FILE_UPLOAD_HANDLERS = [
    "core.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- Local demo (make run) ----------------------------------------------------
DEMO_ADMIN_USERNAME = _str("DEMO_ADMIN_USERNAME", "admin")
DEMO_ADMIN_EMAIL = _str("DEMO_ADMIN_EMAIL", "admin@example.com")
DEMO_ADMIN_PASSWORD = env.str("DEMO_ADMIN_PASSWORD", default="")

# --- Background jobs (django-q2) --------------------------------------------
# The ORM broker on the default database unless REDIS_URL is set. A system
# check (processing.checks) refuses to start when retry <= timeout, which
# would hand a still-running task to a second worker.
REDIS_URL = _str("REDIS_URL", "")
# Seconds the cache client and /health/ wait for Redis to connect or answer:
# short, so an unreachable Redis makes requests fall back (api/throttling.py)
# and /health/ turn red quickly instead of hanging.
REDIS_SOCKET_TIMEOUT = _float("REDIS_SOCKET_TIMEOUT", 0.5, minimum=0.01)
Q_CLUSTER = {
    "name": "dataflow",
    "workers": _int("Q_WORKERS", 2, minimum=1),
    "timeout": _int("Q_TIMEOUT", 3600, minimum=1),
    "retry": _int("Q_RETRY", 3900, minimum=1),
    "max_attempts": _int("Q_MAX_ATTEMPTS", 3, minimum=0),
    "poll": env.float("Q_POLL", default=1.0),
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    # One cache for every process, so API throttle counters are shared by all
    # gunicorn workers and machines (the default cache is per process).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": REDIS_SOCKET_TIMEOUT, "socket_timeout": REDIS_SOCKET_TIMEOUT},
        }
    }
else:
    Q_CLUSTER["orm"] = "default"
# A running run whose worker has not written a heartbeat for this long is
# considered dead: the reaper queues it again, or fails it after
# RUN_MAX_ATTEMPTS starts.
RUN_HEARTBEAT_TIMEOUT = _int("RUN_HEARTBEAT_TIMEOUT", 300, minimum=1)
RUN_MAX_ATTEMPTS = _int("RUN_MAX_ATTEMPTS", 3, minimum=1)
# A queued run whose task was handed to the broker this long ago and that no
# worker has started is sent again by the reaper (the task was lost, or
# discarded by a worker with another SECRET_KEY). A run whose task could not be
# handed over at all (the broker was down) is sent at the reaper's next pass.
RUN_REQUEUE_AFTER = _int("RUN_REQUEUE_AFTER", 600, minimum=60)

# --- Health checks (/health/) ---------------------------------------------------
HEALTH_MIN_FREE_MB = _int("HEALTH_MIN_FREE_MB", 500)
# Red when no worker has run the (every-minute) reaper for this long.
HEALTH_WORKER_MAX_SILENCE = _int("HEALTH_WORKER_MAX_SILENCE", 300, minimum=60)
# Red when a run has been queued for longer than this.
HEALTH_MAX_QUEUE_AGE = _int("HEALTH_MAX_QUEUE_AGE", 1800, minimum=1)

# --- Metrics (/metrics) --------------------------------------------------------
# Prometheus scrapes with "Authorization: Bearer <METRICS_TOKEN>", or directly
# (not through a proxy) from an address in METRICS_ALLOWED_IPS (addresses or
# networks, comma-separated). Neither set: /metrics is closed. No address is
# trusted by default, loopback included: a reverse proxy on the same machine
# connects from 127.0.0.1 on behalf of anyone.
METRICS_TOKEN = _str("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = _list("METRICS_ALLOWED_IPS", [])
for _net in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_net, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_IPS holds {_net!r}, which is not an IP address or network (e.g. 10.0.0.0/8)"
        ) from None

# --- Logging -----------------------------------------------------------------
# json: one JSON object per line (production); console: readable lines.
LOG_LEVEL = _str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = _str("LOG_FORMAT", "console" if DEBUG else "json")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be json or console")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "dataflow.logging.ContextFilter"}},
    "formatters": {
        "json": {"()": "dataflow.logging.JsonFormatter"},
        "console": {
            "()": "dataflow.logging.ConsoleFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {
        "default": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["default"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["default"], "level": LOG_LEVEL, "propagate": False},
        "django-q": {"handlers": ["default"], "level": LOG_LEVEL, "propagate": False},
        # urllib3 logs request lines, query strings included (an API key may be one): never below WARNING.
        "urllib3": {"handlers": ["default"], "level": "WARNING", "propagate": False},
    },
}

# --- REST API (dataflow/settings/api.py) ---------------------------------------
from .api import *  # noqa: E402,F403
