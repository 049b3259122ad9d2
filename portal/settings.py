"""Settings, read from environment variables with safe production defaults.

PORTAL_ENV=dev (set by `python3 dev.py run|test`) allows a development secret key and
plain-HTTP cookies; anywhere else SECRET_KEY must be given. DEBUG is off unless DJANGO_DEBUG=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from portal.embedded import DATA_DIR, database_url


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
PORTAL_ENV = os.environ.get("PORTAL_ENV", "production")
DEV = PORTAL_ENV in {"dev", "test"}
DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEV:
        raise ImproperlyConfigured("SECRET_KEY must be set outside development (PORTAL_ENV=dev).")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

# Hosts are checked by tenants.middleware.HostRoutingMiddleware against partner domains,
# which partners add at run time; Django's own list stays open unless narrowed here.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*")
# The host names of the platform operator console (everything else must be a partner's).
PLATFORM_HOSTS = env_list("PLATFORM_HOSTS", "localhost,127.0.0.1")
# The port the demo prints in URLs; empty in production behind a proxy.
PUBLIC_PORT = os.environ.get("PUBLIC_PORT", "8000" if DEV else "")

SHARED_APPS = [
    "django_tenants",
    "tenants",
    "branding",
    "portal",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.saml",
    "django_celery_beat",
    "django_htmx",
    "template_partials",
    "ninja",
    "api",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "integrations",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Client"
PUBLIC_SCHEMA_NAME = "public"
# What a client schema must look like, migrated by Django itself (`manage.py migrate_portal` keeps it current):
# tests compare new and upgraded client schemas with it, and older clones take their constraint names from it.
# New client schemas are not cloned from it any more: tenants.schema_script (Client.create_schema).
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
# One `SET search_path` per schema switch instead of one per cursor (a queue page opened a dozen
# cursors). Safe with django-tenants 4: a rollback or savepoint rollback, which would undo the SET,
# makes the next cursor issue it again.
TENANT_LIMIT_SET_CALLS = True
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
    "portal.middleware.RequestLimitsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.middleware.HostRoutingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.MfaEnrolmentMiddleware",
    "tenants.middleware.WorkspaceMiddleware",
    "api.calls.ApiCallMiddleware",
]

ROOT_URLCONF = "portal.urls_platform"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "branding.context_processors.brand",
                "tenants.context_processors.surface",
            ],
        },
    }
]

DATABASES = {"default": dj_database_url.parse(database_url(), conn_max_age=60)}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
# dj-database-url leaves a socket directory (?host=/path) in OPTIONS; Django and psycopg want it as HOST.
if not DATABASES["default"].get("HOST") and "host" in DATABASES["default"].get("OPTIONS", {}):
    DATABASES["default"]["HOST"] = DATABASES["default"]["OPTIONS"].pop("host")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One cache shared by every web and worker process, so a dashboard is computed once per workspace
# (by beat), not once per gunicorn worker, and an invalidation reaches every process. Redis when
# CACHE_URL names one (give it a database of its own: tests clear the cache, which is FLUSHDB and
# would drop a broker's queued tasks); otherwise files under data/cache, which every process on
# the machine shares with no server to run, one folder per database so test sessions never meet.
# Keys inside name the client schema; the prefix names the database.
CACHE_URL = os.environ.get("CACHE_URL", "")
_cache_scope = str(DATABASES["default"]["NAME"] or "default")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": _cache_scope,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache" / _cache_scope),
            "OPTIONS": {"MAX_ENTRIES": 5000},
        }
    }

AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "landing"

ACCOUNT_ADAPTER = "portal.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
# An address grants nothing until its owner proves it: a person signs in only with a verified
# address, may not make an unverified one their primary, and changing it keeps the old one until
# the new one is confirmed. Invitations and password resets verify the address they were sent to.
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_RATE_LIMITS = {} if PORTAL_ENV == "test" else {"login_failed": "10/m/ip,5/5m/key"}
if PORTAL_ENV == "test":
    # The suite signs people in and sets passwords hundreds of times, and the default hasher spends a third of a
    # second on each by design. Tests hash with Django's fast test hasher (Django's own advice for test suites);
    # every other environment keeps the default.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ACCOUNT_FORMS = {"login": "tenants.sso_forms.LoginForm"}
# Single sign-on: the identity providers are partners' and clients' own (tenants.SsoConnection), listed per
# host by the adapter, never in settings or allauth's SocialApp table. The adapter alone decides who an IdP
# may sign in (proven domains, its own scope), so allauth's own signup and email matching stay off.
SOCIALACCOUNT_ADAPTER = "portal.sso_adapter.SsoAdapter"
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_QUERY_EMAIL = True
SOCIALACCOUNT_REQUESTS_TIMEOUT = 10
MFA_ADAPTER = "portal.adapters.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# Platform admins must use a second factor (each partner sets its own policy, tenants.MfaPolicy).
# Off by default only under dev.py run and test, so the demo's published logins work; the operator
# console says so.
PLATFORM_ADMINS_REQUIRE_MFA = env_bool("PLATFORM_ADMINS_REQUIRE_MFA", not DEV)

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(DATA_DIR / "emails"))  # for the file backend
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# The address part of every sender (the name part comes from the partner's brand). Unset, each partner's
# mail leaves from no-reply@ its primary domain and the operator console's from no-reply@ its first host,
# so a client never meets the platform's name; set, every mail leaves from this one address (pick one
# your partners' clients may see).
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEV
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEV
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))
MEDIA_URL = "/media/"

# Behind a TLS-terminating proxy (production): trust its header, secure cookies, HSTS.
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", not DEV)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = False  # partners' own domains are not ours to pin
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# How many proxies in front of gunicorn append to X-Forwarded-For: the login rate limit counts
# failures per client address, and without this every client would share the proxy's address (ten
# bad logins a minute from anyone would lock everyone out). TRUSTED_CLIENT_IP_HEADER instead names
# a header the proxy sets to the client's address (X-Real-IP, CF-Connecting-IP).
ALLAUTH_TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "1" if BEHIND_TLS_PROXY else "0"))
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = os.environ.get("TRUSTED_CLIENT_IP_HEADER") or None
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEV)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
# Sessions read from the shared cache (written through to the database): one query fewer on
# every page.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SECURE_CONTENT_TYPE_NOSNIFF = True
# A request body larger than this is refused (413) before anything reads it; the largest legitimate
# one is a brand with a 1 MB logo and a 256 KB favicon. Form fields without files stay under
# Django's own 2.5 MB, and a request carries a handful of files at most.
REQUEST_MAX_BYTES = int(os.environ.get("REQUEST_MAX_BYTES", str(5 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FILES = 10
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# DNS servers ("host" or "host:port") that domain proofs (custom domains, single sign-on domains) ask instead
# of the system's resolvers.
DOMAIN_VERIFY_NAMESERVERS = env_list("DOMAIN_VERIFY_NAMESERVERS")

# Connection credentials are encrypted with these Fernet keys (MultiFernet: the first encrypts,
# all decrypt, so a new key can be put first and `manage.py credentials_rotate` re-encrypts).
CREDENTIALS_KEYS = env_list("CREDENTIALS_KEYS")
if not CREDENTIALS_KEYS and not DEV:
    raise ImproperlyConfigured("CREDENTIALS_KEYS must be set outside development (Fernet keys, comma-separated).")


# Private or loopback destinations connectors may reach anyway: the local vendor sandboxes.
def _sandbox_hosts() -> str:
    from connectors.sandbox.server import SANDBOX_PORTS  # plain Python: connectors never import Django

    return ",".join(f"127.0.0.1:{port}" for port in SANDBOX_PORTS.values())


CONNECTOR_ALLOWED_HOSTS = env_list("CONNECTOR_ALLOWED_HOSTS", _sandbox_hosts() if DEV else "")
# Where the demo's connections find the vendor sandboxes: loopback under `dev.py run`, the sandboxes container under
# deploy/compose.yaml's demo profile.
DEMO_SANDBOX_HOST = os.environ.get("DEMO_SANDBOX_HOST", "127.0.0.1")

# Overrides every vendor's default request rate (tests and benchmarks against local sandboxes).
CONNECTOR_RATE_PER_SECOND = float(os.environ.get("CONNECTOR_RATE_PER_SECOND", "0")) or None

# Celery: Redis (or any broker) when CELERY_BROKER_URL is set, else kombu's filesystem transport.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or "filesystem://"
# Tests get their own queue folder (one per database) so neither a running demo nor a second test
# session takes their messages; worker processes started by tests are given the same folder.
_test_queue = DATA_DIR / "test-broker" / str(DATABASES["default"]["NAME"] or "default")
BROKER_DIR = Path(os.environ.get("CELERY_FS_BROKER_DIR", _test_queue if PORTAL_ENV == "test" else DATA_DIR / "broker"))
if CELERY_BROKER_URL == "filesystem://":
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT = "portal.kombu_fs:Transport"  # atomic writes; see portal/kombu_fs.py
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
    }
    _results_dir = BROKER_DIR / "results"
    _results_dir.mkdir(parents=True, exist_ok=True)
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", f"file://{_results_dir}")
else:
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A queue per kind of work. A worker started without -Q takes them all (dev.py run, the tests); a deployment runs
# workers per queue (deploy/compose.yaml), so a thousand clients' sync slices never hold up a webhook delivery, a
# clerk's bulk retry or the housekeeping that notices a dead run.
CELERY_TASK_QUEUES = [Queue(name) for name in ("celery", "syncs", "webhooks", "bulk", "housekeeping")]
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "integrations.tasks.run_sync": {"queue": "syncs"},
    "integrations.tasks.flow_scheduled": {"queue": "syncs"},
    "api.tasks.webhook_deliver": {"queue": "webhooks"},
    "integrations.tasks.exceptions_bulk_retry": {"queue": "bulk"},
    "integrations.tasks.template_rollout_client": {"queue": "bulk"},
    "integrations.tasks.runs_recover": {"queue": "housekeeping"},
    "integrations.tasks.dashboards_refresh": {"queue": "housekeeping"},
    "api.tasks.webhook_deliveries_recover": {"queue": "housekeeping"},
    "portal.tasks.*": {"queue": "housekeeping"},
    "tenants.tasks.*": {"queue": "housekeeping"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "portal.tasks.heartbeat", "schedule": 15.0},
    "usage-rollup": {"task": "portal.tasks.usage_rollup", "schedule": 900.0},
    "sla-alerts": {"task": "portal.tasks.sla_alerts", "schedule": 900.0},
    "runs-recover": {"task": "portal.tasks.runs_recover", "schedule": 60.0},
    "dashboards-refresh": {"task": "portal.tasks.dashboards_refresh", "schedule": 60.0},
    "webhook-deliveries-recover": {"task": "api.tasks.webhook_deliveries_recover", "schedule": 300.0},
    "renewals": {"task": "tenants.tasks.renewals_run", "schedule": 3600.0},
}
# A run executes in slices of this many seconds, then queues its next slice behind other clients' work.
SYNC_SLICE_SECONDS = float(os.environ.get("SYNC_SLICE_SECONDS", "20"))
# At most this many runs execute at once per client workspace; more wait their turn. Two by default: a
# workspace's time and expenses flows run side by side (their shared reference reads take turns, a row both
# insert sends the later page through a record at a time), and a third run waits rather than crowd out other
# clients on a two-worker machine.
SYNC_MAX_RUNS_PER_CLIENT = int(os.environ.get("SYNC_MAX_RUNS_PER_CLIENT", "2"))
# A run queued behind another of its client's is woken when that one is done; it also looks again this
# often on its own, in case the run it waits on died before waking it.
SYNC_BUSY_RECHECK_SECONDS = float(os.environ.get("SYNC_BUSY_RECHECK_SECONDS", "30"))
# The API's throttles: calls a minute per key, and per client whichever keys reach it (a partner key's
# calls count against the client each one reaches, so one busy client never starves another).
API_KEY_RATE_PER_MINUTE = int(os.environ.get("API_KEY_RATE_PER_MINUTE", "120"))
API_CLIENT_RATE_PER_MINUTE = int(os.environ.get("API_CLIENT_RATE_PER_MINUTE", "300"))
# A webhook delivery that fails is tried again after this many seconds, then 4x, 16x ... (at most 6 h).
WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", "30"))
# /metrics answers only with "Authorization: Bearer <METRICS_TOKEN>" when this is set.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# A worker that has not written a heartbeat for this long is reported down by /healthz.
WORKER_HEARTBEAT_STALE_SECONDS = int(os.environ.get("WORKER_HEARTBEAT_STALE_SECONDS", "60"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "pgserver": {"level": "WARNING"}},
}
