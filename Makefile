# DataFlow Analytics — everyday commands. CI runs the same targets.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
BENCH_API_SMOKE_URL ?= postgres://postgres@127.0.0.1:5432/dataflow_apibench_smoke
BENCH_INGEST_SMOKE_URL ?= postgres://postgres@127.0.0.1:5432/dataflow_ingestbench_smoke
export PYTHON VENV PORT

.PHONY: run setup test lint check worker migrate bench-smoke fuzz clean help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

setup: ## Create the virtualenv, install dependencies, write .env if missing
	@scripts/setup.sh

run: setup ## Migrate, load the demo data and serve the admin plus a worker on 127.0.0.1:$(PORT)
	@scripts/run.sh

test: setup ## Run the test suite (SQLite; set DATABASE_URL=postgres://… for Postgres)
	@scripts/test.sh $(ARGS)

lint: setup ## ruff lint and format check, import layers (import-linter), types (mypy)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

check: setup ## Django system checks and missing migrations
	$(VENV)/bin/python manage.py check
	$(VENV)/bin/python manage.py makemigrations --check --dry-run

worker: setup ## Run a background worker (django-q2 cluster) in the foreground
	$(VENV)/bin/python manage.py qcluster

migrate: setup ## Apply database migrations
	$(VENV)/bin/python manage.py migrate

fuzz: setup ## Fuzz the REST API against its OpenAPI schema (schemathesis, bounded)
	@scripts/fuzz_api.sh

bench-smoke: setup ## Small runs of the ingestion, records API and data page benchmarks (figures only)
	$(VENV)/bin/python bench/ingest_bench.py --rows 20000 --database-url $(BENCH_INGEST_SMOKE_URL)
	$(VENV)/bin/python bench/api_bench.py --records 20000 --duration 2 --warmup 1 \
		--database-url $(BENCH_API_SMOKE_URL)
	$(VENV)/bin/python bench/data_page_bench.py --records 20000 --repeat 3

clean: ## Remove the virtualenv and local runtime data
	rm -rf $(VENV) data staticfiles .pytest_cache .ruff_cache .mypy_cache
