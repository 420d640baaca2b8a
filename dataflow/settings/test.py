"""Settings for the test suite: the base settings with test-only secrets.

Set ``DATABASE_URL=postgres://…`` to run the suite on Postgres.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="dataflow-test-"))
os.environ.setdefault("DATAFLOW_ENV_FILE", "/nonexistent")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault(
    "JWT_SIGNING_KEY", "test-only-jwt-signing-key-not-for-production-0123456789"
)  # the test client and live server speak plain HTTP

# A fixed Fernet key (urlsafe base64 of 32 bytes) for the tests only.
os.environ.setdefault("ENCRYPTION_KEYS", "dGVzdC1vbmx5LWVuY3J5cHRpb24ta2V5LTAxMjM0NTY=")
# The tests' HTTP servers listen on loopback; SSRF tests switch this off.
os.environ.setdefault("SOURCE_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
os.environ.setdefault("SOURCE_BACKOFF_BASE", "0.01")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
WHITENOISE_AUTOREFRESH = True  # tests render pages without running collectstatic
