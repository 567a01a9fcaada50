# Two commands for a fresh machine with Python 3.11 and pip:
#   make run    set up .venv and reproduce the pipeline on the default (synthetic) data
#   make test   set up .venv and run the test suite
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed

# No network at run time, no telemetry; kedro and dvc resolve from the venv.
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export KEDRO_LOGGING_CONFIG := conf/logging.yml

.PHONY: setup run test lint viz viz-check plots bench lock clean tune tune-apply tune-dashboard

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when the pins or the project metadata change.
$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

run: setup
	dvc repro
	@echo "Outputs: data/02_intermediate … data/06_models, data/08_reporting (SYNTHETIC corpus by default)"

test: setup
	python -m pytest

lint: setup
	ruff check src tests benchmarks
	mypy

# kedro-viz 12.5 imports FastAPI's deprecated ORJSONResponse: its warning says nothing
# about this project, so it is silenced here (and only this one).
viz: setup
	PYTHONWARNINGS="ignore:ORJSONResponse is deprecated" kedro viz build --include-hooks
	@echo "Serve it with: python -m http.server -d build 4141  (then open http://127.0.0.1:4141)"

# Open every pipeline of build/ in headless Chromium (Debian's chromium and
# chromium-driver) and check its nodes are drawn; screenshots in data/08_reporting/.
viz-check: viz
	python -m acula_pipeline.lineage build -o data/08_reporting

# dvc plots show with Vega inlined: the page draws without network (DVC's own loads a CDN)
plots: setup
	python -m acula_pipeline.plots_page build/dvc_plots_offline.html
	dvc plots show --html-template build/dvc_plots_offline.html -o build/dvc_plots
	@echo "Open build/dvc_plots/index.html"

# Optuna study over the align settings (conf/base/parameters_tune.yml); rerun to continue
# it, or start several at once to share the work. ARGS go to kedro run, e.g.
# make tune ARGS='--params=tune.n_trials=5,tune.fixed.train.epochs=1'
tune: setup
	kedro run --pipelines=tune $(ARGS)

# Write the best settings into params.yaml; `make run` then retrains.
tune-apply: setup
	python -m acula_pipeline.tuning apply

tune-dashboard: setup
	optuna-dashboard data/06_models/tuning/optuna.journal --host 127.0.0.1 --port 8080

bench: setup
	python benchmarks/ingest_throughput.py
	python benchmarks/reports_throughput.py
	python benchmarks/validate_throughput.py
	python benchmarks/probe_throughput.py
	python benchmarks/report_checks.py

lock: setup
	{ head -2 requirements.txt; python -m pip freeze --exclude-editable | grep -v '^acula'; } > requirements.lock.tmp
	mv requirements.lock.tmp requirements.txt

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .mypy_cache
