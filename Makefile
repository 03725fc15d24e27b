# The commands people, CI and the pipeline run. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQUIREMENTS := $(wildcard requirements/*.txt backend/requirements.txt compressor/requirements.txt loadtests/requirements.txt)
PYTEST_ARGS ?=

NODE_STAMP := node_modules/.installed
FRONTEND_SOURCES := $(shell find frontend/src frontend/public -type f 2>/dev/null) frontend/index.html \
	frontend/vite.config.js frontend/package.json frontend/package-lock.json

.PHONY: help up down reset logs seed loadtest loadtest-accept capacity test test-ci chaos rehearse preflight bench lint format venv reset-venv synth frontend changes

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): $(REQUIREMENTS) scripts/bootstrap.sh
	@scripts/bootstrap.sh

venv: $(STAMP) ## Create .venv and install the pinned dependencies (done by every target on first use)

$(NODE_STAMP): package.json package-lock.json
	@echo "==> Installing the pinned CDK CLI (and Node 22 for it) into node_modules"
	@command -v npm >/dev/null || { echo "ERROR: npm not found: install Node.js 20 or newer." >&2; exit 1; }
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

frontend/dist/index.html: $(FRONTEND_SOURCES) scripts/build_frontend.sh
	@scripts/build_frontend.sh

frontend: frontend/dist/index.html ## Build the web client into frontend/dist (hashed assets + config.json)

synth: $(STAMP) $(NODE_STAMP) frontend ## cdk synth of every stage (cdk-nag gate) + cfn-lint; offline, no AWS credentials
	@$(PY) scripts/synth.py

changes: $(STAMP) $(NODE_STAMP) ## What a change does to every stack, BASE (default origin/main, else main) to the working tree; fails on prod data loss
	@$(PY) -m pipeline.changes $(if $(BASE),--base "$(BASE)")

up: $(STAMP) frontend ## Run the whole app locally at http://127.0.0.1:8000 (Ctrl-C stops it)
	@$(PY) -m devstack up

down: $(STAMP) ## Stop what `make up` started (from another terminal, or after a crash)
	@$(PY) -m devstack down

reset: $(STAMP) ## Stop the local stack and wipe .local/ (database, objects, keys)
	@$(PY) -m devstack reset

seed: $(STAMP) ## Create the demo user and a few public and private posts (needs `make up` running)
	@$(PY) -m devstack.seed

loadtest: $(STAMP) ## Load test, then "vs baseline" (SHAPE=smoke|step|soak PROFILE=local|staging RUN_TIME=90s USERS=N PROCESSES=N; HOST=https://... TARGET=staging targets a deployment)
	@$(PY) -m loadtests run --shape "$(or $(SHAPE),smoke)" --profile "$(or $(PROFILE),local)" \
		$(if $(HOST),--host "$(HOST)") $(if $(TARGET),--target "$(TARGET)") $(if $(RUN_TIME),--run-time "$(RUN_TIME)") \
		$(if $(USERS),--users "$(USERS)") $(if $(PROCESSES),--processes "$(PROCESSES)")

loadtest-accept: $(STAMP) ## Make a load-test run the baseline of its target, profile and shape (RUN=reports/loadtest/latest; ACCEPT_ARGS=--force)
	@$(PY) -m loadtests.regression accept "$(or $(RUN),reports/loadtest/latest)" $(ACCEPT_ARGS)

capacity: $(STAMP) ## Capacity review of a load-test run, written into its folder (RUN=reports/loadtest/latest)
	@$(PY) -m loadtests.capacity "$(or $(RUN),reports/loadtest/latest)" $(CAPACITY_ARGS)

logs: ## Follow the logs of the local stack's services
	@mkdir -p .local/logs && touch .local/logs/api.log && tail -n 50 -F .local/logs/*.log

lint: $(STAMP) frontend ## ruff (lint + format check), mypy, and prettier (web client)
	@echo "==> ruff check"; $(VENV)/bin/ruff check .
	@echo "==> ruff format --check"; $(VENV)/bin/ruff format --check .
	@echo "==> mypy"; $(VENV)/bin/mypy backend/app devstack compressor loadtests stages pipeline scripts yoctogram_common
	@echo "==> mypy --strict (what runs in the images)"; $(VENV)/bin/mypy --strict backend/app compressor yoctogram_common --exclude 'compressor/tests/'
	@echo "==> prettier --check frontend"; cd frontend && npm run -s lint

format: $(STAMP) ## Fix what ruff can fix and format the code
	@$(VENV)/bin/ruff check --fix . ; $(VENV)/bin/ruff format .

test: $(STAMP) $(NODE_STAMP) frontend lint ## Lint, then every test (starts its own PostgreSQL and S3 on free ports)
	@echo "==> pytest"
	@$(PY) -m pytest $(PYTEST_ARGS)

test-ci: $(STAMP) $(NODE_STAMP) frontend lint ## The pipeline's synth step: lint, then the unit and infrastructure tests (no browser, no load tests)
	@echo "==> pytest (browser and load tests excluded)"
	@$(PY) -m pytest -m "not browser and not slow" $(PYTEST_ARGS)

chaos: $(STAMP) frontend ## The fault suite: kills and hangs the local stack's services under load; report in reports/chaos/ (about 2 min; CI runs it after `make test`)
	@$(PY) -m devstack.chaos $(CHAOS_ARGS)

rehearse: $(STAMP) $(NODE_STAMP) frontend ## The pipeline's steps, here, in order, up to the prod approval (the local stack stands in for staging)
	@$(PY) scripts/rehearse.py $(REHEARSE_ARGS)

preflight: $(STAMP) $(NODE_STAMP) ## Read-only check of an account before the first push (ENV=staging|prod|pipeline, default all; PREFLIGHT_ARGS=--offline)
	@$(PY) -m pipeline.preflight --env "$(or $(ENV),all)" $(PREFLIGHT_ARGS)

bench: $(STAMP) $(NODE_STAMP) frontend ## Measure the API, the compressor and the build against their targets (about 12 min; not part of `make test`)
	@$(PY) -m pip install --quiet -r bench/requirements.txt
	@$(PY) bench/run.py $(BENCH_ARGS)

reset-venv: ## Delete .venv (the next command re-creates it)
	rm -rf $(VENV)
