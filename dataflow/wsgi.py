"""WSGI entry point (gunicorn dataflow.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from dataflow.uploads import ChunkedBodyMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataflow.settings.base")

# Chunked request bodies (Transfer-Encoding: chunked) reach Django with a Content-Length.
application = ChunkedBodyMiddleware(get_wsgi_application())
