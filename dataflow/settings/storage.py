"""Where raw, processed and archived files live: ``STORAGES["dataflow"]`` from the environment.

- nothing set: local disk under ``DATA_DIR`` (the default);
- ``DATA_STORAGE_URL=s3://BUCKET/PREFIX``: an S3 bucket (django-storages,
  boto3), with ``S3_ENDPOINT_URL`` for S3-compatible servers and the standard
  ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_DEFAULT_REGION``
  (when the keys are unset, boto3's own chain applies: instance roles, profiles);
- ``DATA_STORAGE_BACKEND=dotted.path.Storage``: any other Django storage class,
  configured by its own settings (no options are passed).

A malformed value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

S3_BACKEND = "ingestion.storage.S3DataStorage"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Reads and uploads spill to a temporary file beyond this many bytes, never all in memory.
S3_MAX_MEMORY_SIZE = 8 * 1024 * 1024


def data_storage_config(environ: Mapping[str, str], data_dir: Path) -> dict[str, Any]:
    """The ``STORAGES["dataflow"]`` entry the variables in ``environ`` ask for."""
    url = environ.get("DATA_STORAGE_URL", "").strip()
    backend = environ.get("DATA_STORAGE_BACKEND", "").strip()
    if url and backend:
        raise ImproperlyConfigured(
            "DATA_STORAGE_URL and DATA_STORAGE_BACKEND are both set; keep one "
            "(DATA_STORAGE_URL=s3://BUCKET/PREFIX for a bucket, DATA_STORAGE_BACKEND for another storage class)"
        )
    if backend:
        return {"BACKEND": backend, "OPTIONS": {}}
    if not url:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(data_dir)}}
    return {"BACKEND": S3_BACKEND, "OPTIONS": s3_options(url, environ)}


def s3_options(url: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """django-storages' ``S3Storage`` options for ``s3://BUCKET/PREFIX``."""
    where = f"DATA_STORAGE_URL={url!r}"
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ImproperlyConfigured(
            f"{where} is not supported: use s3://BUCKET/PREFIX (or leave it unset to store files under DATA_DIR)"
        )
    if parts.username or parts.password or parts.port:
        raise ImproperlyConfigured(
            f"{where}: put no credentials or port in the URL; "
            "use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and S3_ENDPOINT_URL"
        )
    if parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{where}: the URL takes no ?query or #fragment (s3://BUCKET/PREFIX)")
    bucket = parts.netloc
    if not _BUCKET.match(bucket):
        raise ImproperlyConfigured(
            f"{where}: {bucket or '(empty)'!s} is not a valid bucket name "
            "(3-63 lower-case letters, digits, dots and hyphens)"
        )
    prefix = parts.path.strip("/")
    if prefix and any(part in {"", ".", ".."} for part in prefix.split("/")):
        raise ImproperlyConfigured(f"{where}: the prefix {prefix!r} has an empty, '.' or '..' part")
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "location": prefix,
        # Never replace a stored file silently: a second upload of a name gets a new name (as on disk).
        "file_overwrite": False,
        "default_acl": None,
        "querystring_auth": False,
        "max_memory_size": S3_MAX_MEMORY_SIZE,
        # Fail within seconds when the server is down (health check, uploads), retry brief hiccups.
        "client_config": Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 3}),
    }
    endpoint = environ.get("S3_ENDPOINT_URL", "").strip()
    if endpoint:
        endpoint_parts = urlsplit(endpoint)
        if endpoint_parts.scheme not in {"http", "https"} or not endpoint_parts.hostname:
            raise ImproperlyConfigured(f"S3_ENDPOINT_URL={endpoint!r} is not an http(s)://HOST[:PORT] URL")
        options["endpoint_url"] = endpoint
        # S3-compatible servers (SeaweedFS, MinIO, Ceph) answer path-style requests whatever their DNS.
        options["addressing_style"] = "path"
    region = environ.get("AWS_DEFAULT_REGION", "").strip()
    if region:
        options["region_name"] = region
    access_key = environ.get("AWS_ACCESS_KEY_ID", "").strip()
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY", "").strip()
    if bool(access_key) != bool(secret_key):
        raise ImproperlyConfigured("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
    if access_key:
        options["access_key"] = access_key
        options["secret_key"] = secret_key
    return options
