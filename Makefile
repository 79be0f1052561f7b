# One entry point for people and CI. `make quickstart` sets up .venv and runs the main job;
# `make check` lints and type-checks, `make test` runs the test suite (.ci/run calls both).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Airflow has its own virtualenv: it pins FastAPI below the service's (requirements-airflow.txt).
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

.PHONY: setup setup-airflow quickstart test check lint typecheck clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

$(AIRFLOW_STAMP): requirements.txt requirements-airflow.txt pyproject.toml
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	grep -v '^fastapi==' requirements.txt > $(AIRFLOW_VENV)/requirements-base.txt
	$(AIRFLOW_VENV)/bin/pip install --quiet -r $(AIRFLOW_VENV)/requirements-base.txt \
		-r requirements-airflow.txt
	$(AIRFLOW_VENV)/bin/pip install --quiet --no-deps -e .
	touch $(AIRFLOW_STAMP)

setup-airflow: $(AIRFLOW_STAMP)

quickstart: $(STAMP)
	$(BIN)/cinesense quickstart

# Installs the Debian packages the tests need first (deps/apt-test.txt), or says which.
test: $(STAMP) $(AIRFLOW_STAMP)
	scripts/test-deps.sh
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts airflow
	$(BIN)/ruff format --check src tests benchmarks scripts airflow

typecheck: $(STAMP)
	$(BIN)/mypy

# Lint and type checks (fast; CI runs them before the tests).
check: lint typecheck

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) .cinesense .pytest_cache .ruff_cache .mypy_cache

# The whole platform on this machine (object store, MLflow, Airflow, API, UI, nginx) under
# supervisord: `make up` (DEMO=1 crawls the local fake site once), `make down` (data kept),
# `make status`, `make logs` (SERVICE=api for one), `make credentials`.
.PHONY: up down status logs credentials
DEMO_FLAG := $(if $(filter 1 true yes,$(DEMO)),--demo,)

up: $(STAMP) $(AIRFLOW_STAMP)
	$(BIN)/cinesense stack up $(DEMO_FLAG)

down:
	@if [ -x $(BIN)/cinesense ]; then $(BIN)/cinesense stack down; fi

status: $(STAMP)
	@$(BIN)/cinesense stack status

logs: $(STAMP)
	@$(BIN)/cinesense stack logs $(SERVICE)

credentials: $(STAMP)
	@$(BIN)/cinesense stack credentials
