# The few verbs people type. `make run` and `make test` work on a fresh machine.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
PYTHON ?= python3
# stage commands in dvc.yaml call `negsamp`: make the venv's the one on PATH
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false

.PHONY: venv run simulate test test-full test-system-deps test-fast lint format bench ui serve prefect-yaml serve-model clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first: 2.13.0 is a CPU build here (an unpinned torch pulls a ~5 GB CUDA build);
	# on a machine with an NVIDIA GPU the same pin installs the CUDA build from PyPI.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c requirements.lock -e ".[test,cluster]"
	touch $@

venv: $(VENV)/.installed

run: venv  ## set up and run the whole pipeline on the synthetic default
	negsamp run

simulate: venv  ## 30 days of production on a real Prefect server (.negsamp/simulation/report/)
	negsamp simulate --days 30

test: venv test-system-deps  ## install what tests need and run the suite (every real component)
	pytest -q -m "not full" --durations=25

test-full: venv test-system-deps  ## the exhaustive checks make test runs in short (every kill point)
	pytest -q -m full

# Best effort, never fatal: Debian tools some tests use (they skip cleanly without them).
# PostgreSQL's server (package postgresql) backs the real-PostgreSQL registry test;
# docker-compose validates docker/compose.yaml; chromium and chromium-driver open the MLflow UI
# in a headless browser.
test-system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	  command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing test tools:$$missing (best effort)"; \
	    (timeout 120 apt-get update -qq && timeout 300 apt-get install -y -qq --no-install-recommends $$missing) >/dev/null 2>&1 \
	      || echo "could not install$$missing: those tests will skip"; \
	  fi; \
	fi

test-fast: venv
	pytest -q -m "not slow"

lint: venv
	ruff check src flows tests bench
	ruff format --check src flows tests bench

format: venv
	ruff format src flows tests bench
	ruff check --fix src flows tests bench

bench: venv
	python bench/samplers.py
	python bench/train.py
	python bench/evaluate.py
	python bench/recommend.py
	python bench/registry_show.py

ui: venv  ## MLflow UI on 127.0.0.1:5000
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000 --workers 1

serve: venv  ## serve the drift-check (cron) and retrain deployments on PREFECT_API_URL, else on a Prefect server it starts on 127.0.0.1:4200
	python -m flows.deployments --start-server

prefect-yaml: venv  ## regenerate prefect.yaml (work-pool deployments) from params.yaml's schedule section
	python -m flows.deployments --write-prefect-yaml prefect.yaml

serve-model: venv  ## top-K recommendations of the champion on 127.0.0.1:5001
	negsamp serve

clean:
	rm -rf data/raw/*.parquet data/interim data/validation data/split data/pools data/models data/metrics data/registry
