"""Settings, read from environment variables with safe defaults.

Every variable is documented in `.env.example`. With nothing set, failtrack runs on an
embedded SQLite file and an embedded task queue; production sets DATABASE_URL (PostgreSQL),
CELERY_BROKER_URL (Redis), SECRET_KEY and ALLOWED_HOSTS.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FAILTRACK_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable into a list of non-empty items."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example).")
    # Only reachable with DEBUG explicitly on: a key that is obviously not for production.
    SECRET_KEY = "insecure-development-key-" + "x" * 40

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from our static files
    "simple_history",
    "failures",
    "taxonomy",
    "alerts",
    "reports",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'failtrack.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that drops packets must fail a connection attempt quickly (the hook
    # then spools), not hang a web worker until it is killed.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", int(os.environ.get("DATABASE_CONNECT_TIMEOUT", "3"))
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves one demo: wait for the worker's writes instead of
    # failing with "database is locked", and never keep connections across requests.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # plotly.js comes from the plotly package we already depend on, never from a CDN.
    "reports.staticfiles.PlotlyJsFinder",
]
WHITENOISE_USE_FINDERS = DEBUG

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.api.StandardPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "failtrack API",
    "DESCRIPTION": "Failure tracking for applicant tracking systems.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ loads Swagger UI from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Group operations by what follows /api/v1/ (beacon, failures, hooks, ...).
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.error_responses",  # 400/401/403/404, documented once for all
    ],
}

# --- Celery ---------------------------------------------------------------------------
# Without CELERY_BROKER_URL the broker is kombu's filesystem transport under var/: it needs
# no server, yet the web process and the worker of `make run` still talk through it.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "queue-processed"),
        "control_folder": str(VAR_DIR / "queue-control"),
        "store_processed": False,
    }
    _queue_dir.mkdir(parents=True, exist_ok=True)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"
# A webhook must answer fast even when the broker is down: publish once, then leave the
# delivery to the sweeper (its row in the database is the outbox).
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2

# History is for reading: reverting a row from its history would bypass services.
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- failtrack ------------------------------------------------------------------------
# Largest webhook body accepted, in bytes; larger deliveries are answered 413.
FAILTRACK_WEBHOOK_MAX_BYTES = int(os.environ.get("FAILTRACK_WEBHOOK_MAX_BYTES", 256 * 1024))
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, FAILTRACK_WEBHOOK_MAX_BYTES)
# Client-side capture (failtrack-beacon.js): largest beacon body in bytes, and beacons a
# tracking key may send per minute before 429.
FAILTRACK_BEACON_MAX_BYTES = int(os.environ.get("FAILTRACK_BEACON_MAX_BYTES", 4096))
FAILTRACK_BEACON_RATE_PER_MINUTE = int(os.environ.get("FAILTRACK_BEACON_RATE_PER_MINUTE", 600))
# Seconds a web process trusts its cached copy of a connection's signing keys (revoking a
# key takes this long to reach every process; during a database outage older copies serve).
FAILTRACK_CREDENTIALS_FRESH_SECONDS = float(
    os.environ.get("FAILTRACK_CREDENTIALS_FRESH_SECONDS", 30)
)
# Largest body of a batch import (JSON lines) in bytes.
FAILTRACK_BATCH_MAX_BYTES = int(os.environ.get("FAILTRACK_BATCH_MAX_BYTES", 10 * 1024 * 1024))
# The address the ATS reaches us at; printed in webhook URLs (connection_create).
FAILTRACK_PUBLIC_URL = os.environ.get("FAILTRACK_PUBLIC_URL", "http://localhost:8000")
# Fernet keys encrypting connection secrets at rest, comma-separated; the first encrypts,
# all decrypt (rotation). Empty: one key derived from SECRET_KEY.
FAILTRACK_ENCRYPTION_KEYS = [
    key for key in os.environ.get("FAILTRACK_ENCRYPTION_KEYS", "").split(",") if key.strip()
]
# Where accepted deliveries wait, fsync'd, while the database cannot take them.
FAILTRACK_SPOOL_DIR = Path(os.environ.get("FAILTRACK_SPOOL_DIR", VAR_DIR / "spool"))
# Seconds a signed timestamp may differ from our clock (vendors with a replay window).
FAILTRACK_REPLAY_WINDOW_SECONDS = int(os.environ.get("FAILTRACK_REPLAY_WINDOW_SECONDS", 300))
# A received delivery not processed after this many seconds is re-queued by the sweeper.
FAILTRACK_SWEEP_AFTER_SECONDS = int(os.environ.get("FAILTRACK_SWEEP_AFTER_SECONDS", 120))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}
