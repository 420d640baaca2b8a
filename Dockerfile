# syntax=docker/dockerfile:1
# DataFlow Analytics: one image, two roles (web and worker, see scripts/entrypoint.sh).

# --- build: install the dependencies into a virtualenv ------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt

# --- runtime: the virtualenv and the code, no build tools, not root ---------------
FROM python:3.11-slim AS runtime
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=dataflow.settings.base \
    DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles \
    GUNICORN_BIND=0.0.0.0:8000
RUN groupadd --system dataflow && useradd --system --gid dataflow --home-dir /app dataflow \
    && mkdir -p /app /data && chown dataflow:dataflow /app /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=dataflow:dataflow . /app
USER dataflow
# Static files are collected into the image; SECRET_KEY is only needed to load settings here.
RUN SECRET_KEY=collectstatic-only JWT_SIGNING_KEY=collectstatic-only-not-a-real-signing-key \
    ENCRYPTION_KEYS=Y29sbGVjdHN0YXRpYy1vbmx5LW5vdC1hLXJlYWwtayE= \
    DATA_DIR=/tmp/build-data python manage.py collectstatic --noinput -v0
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live/', timeout=4).status != 200)"
ENTRYPOINT ["/app/scripts/entrypoint.sh"]
CMD ["web"]
