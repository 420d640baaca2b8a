"""WSGI entry point (gunicorn dataflow.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from dataflow.security import RequestCharsetWSGIMiddleware
from dataflow.uploads import ChunkedBodyMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataflow.settings.base")

# A charset that is no text encoding (or a form that is not UTF-8) is refused before Django
# builds the request (it decodes the query string with that charset) and before a chunked body
# is spooled; chunked request bodies (Transfer-Encoding: chunked) reach Django with a Content-Length.
application = RequestCharsetWSGIMiddleware(ChunkedBodyMiddleware(get_wsgi_application()))
