# The two commands of the README: `make run` and `make test`. Everything else is theirs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_RUN := $(VENV)/.deps-run
DEPS_DEV := $(VENV)/.deps-dev
# Production-like settings for `check --deploy` (values only for the check, never used).
DEPLOY_ENV := DJANGO_SETTINGS_MODULE=config.settings DEBUG=0 ALLOWED_HOSTS=failtrack.example.com \
	SECRET_KEY=deploy-check-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP

.PHONY: run test lint format clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit("failtrack needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(DEPS_RUN): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(DEPS_DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@ $(DEPS_RUN)

## make run: set up, load the demo (SQLite) and serve it with its task runner on 127.0.0.1:8000
run: $(DEPS_RUN)
	DEBUG=1 $(PY) manage.py migrate --noinput -v0
	DEBUG=1 $(PY) manage.py demo_load
	DEBUG=1 $(PY) manage.py demo_deliveries
	DEBUG=1 $(PY) manage.py demo_serve

## make test: lint, Django checks, missing migrations, and the whole suite on PostgreSQL and Redis
test: $(DEPS_DEV)
	bash .ci/services
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	DJANGO_SETTINGS_MODULE=config.test_settings $(PY) manage.py check
	DJANGO_SETTINGS_MODULE=config.test_settings $(PY) manage.py makemigrations --check --dry-run
	$(DEPLOY_ENV) $(PY) manage.py check --deploy --fail-level WARNING
	$(PY) -m pytest

format: $(DEPS_DEV)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf var .pytest_cache .ruff_cache
