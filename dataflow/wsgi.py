"""WSGI entry point (gunicorn dataflow.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dataflow.settings.base")

application = get_wsgi_application()
