"""WSGI entry point (gunicorn dataflow.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataflow.settings.base")

django_application = get_wsgi_application()

# Imported once Django is set up: the chunked-body middleware checks access tokens, whose
# module needs the app registry loaded.
from core.uploads import ChunkedBodyMiddleware  # noqa: E402
from dataflow.security import RequestCharsetWSGIMiddleware  # noqa: E402

# A charset that is no text encoding (or a form that is not UTF-8) is refused before Django
# builds the request (it decodes the query string with that charset) and before a chunked body
# is spooled; chunked request bodies (Transfer-Encoding: chunked) reach Django with a Content-Length.
application = RequestCharsetWSGIMiddleware(ChunkedBodyMiddleware(django_application))
