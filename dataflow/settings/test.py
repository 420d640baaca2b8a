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

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
WHITENOISE_AUTOREFRESH = True  # tests render pages without running collectstatic
