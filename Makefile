# Thin wrappers: the real work is in compose.yaml, scripts/ and tests/.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
COMPOSE ?= docker compose
SITE_URL ?= http://127.0.0.1:8080

.DEFAULT_GOAL := help
.PHONY: help docker-check preflight standin-images up down clean logs ps bootstrap backup restore e2e test test-unit \
	test-integration test-e2e lint dev dev-down dev-status dev-reset bench bench-scale screenshots deps dist \
	swarm-rehearsal

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# -- the compose cluster ---------------------------------------------------------

docker-check:
	@if ! docker info >/dev/null 2>&1; then \
	  echo "No Docker engine is reachable (docker info failed): this target needs one." >&2; \
	  echo "To run the same topology natively without Docker, use: make dev" >&2; \
	  exit 1; \
	fi

preflight: ## Check the Docker engine, Compose and base images that `make up` needs
	@COMPOSE="$(COMPOSE)" scripts/docker-preflight.sh

standin-images: docker-check ## No registry? Build the base images locally from Debian's archive (root)
	standin-images/build

up: preflight ## Build and start the compose cluster, wait until healthy, print the URL
	$(COMPOSE) up --build --detach --wait --wait-timeout 900
	@echo "The avatar site is ready at $(SITE_URL)"

down: docker-check ## Stop the compose cluster (data volumes are kept)
	$(COMPOSE) --profile e2e --profile storage4 down --remove-orphans

clean: docker-check ## Stop the compose cluster and delete its volumes
	$(COMPOSE) --profile e2e --profile storage4 down --volumes --remove-orphans

logs: docker-check ## Follow the compose cluster's logs
	$(COMPOSE) logs --follow --tail=100

ps: docker-check ## Show the compose services and their health
	$(COMPOSE) ps

bootstrap: docker-check ## Re-run the idempotent bootstrap against the compose cluster
	$(COMPOSE) run --rm bootstrap

backup: docker-check ## Dump the tracker's and the site's databases: make backup DIR=/path/to/dir
	@[ -n "$(DIR)" ] || { echo "usage: make backup DIR=/path/to/dir" >&2; exit 2; }
	COMPOSE="$(COMPOSE)" scripts/db-backup backup "$(DIR)"

restore: docker-check ## Load a backup into the compose MySQL: make restore FILE=... [FORCE=1]
	@[ -n "$(FILE)" ] || { echo "usage: make restore FILE=/path/to/dump.sql.gz [FORCE=1]" >&2; exit 2; }
	COMPOSE="$(COMPOSE)" scripts/db-backup restore "$(FILE)" $(if $(filter 1,$(FORCE)),--force)

swarm-rehearsal: docker-check ## The swarm stack on four engines of this machine, with the e2e suite (REHEARSAL_ARGS=...)
	$(PY) deploy/swarm/rehearse.py $(REHEARSAL_ARGS)

e2e: docker-check ## Run the end-to-end suite from a container on the compose network
	$(COMPOSE) --profile storage4 up --no-start mogstored4
	$(COMPOSE) --profile e2e run --rm --build e2e

# -- local development and tests ------------------------------------------------

# The pinned requirements, then django-mogilefs itself (editable: src/ is what runs).
# mysqlclient (compose's MySQL driver) builds from source with the `test` group's Debian
# packages, so only `make test` adds it: `make dev` runs the site on SQLite.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	grep -v '^mysqlclient==' requirements.txt >$(VENV)/requirements-no-mysql.txt
	sed 's|^-r requirements.txt$$|-r requirements-no-mysql.txt|' requirements-dev.txt \
	  >$(VENV)/requirements-dev-no-mysql.txt
	$(PY) -m pip install --quiet -r $(VENV)/requirements-dev-no-mysql.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $@

$(VENV)/.mysqlclient: requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet "$$(grep '^mysqlclient==' requirements.txt)"
	touch $@

# Debian package groups (scripts/system-deps.sh): dev (what make dev runs), test, bench.
SYSTEM_DEPS ?= dev test bench
dev: SYSTEM_DEPS = dev
bench bench-scale: SYSTEM_DEPS = bench
test screenshots: SYSTEM_DEPS = test

deps: ## The Python environment and (as root) the Debian packages of SYSTEM_DEPS (all groups)
	@if [ "$$(id -u)" = 0 ]; then scripts/system-deps.sh --install $(SYSTEM_DEPS); \
	  else scripts/system-deps.sh $(SYSTEM_DEPS); fi
	@$(MAKE) --no-print-directory $(VENV)/.installed \
	  $(if $(filter test,$(SYSTEM_DEPS)),$(VENV)/.mysqlclient)

dist: $(VENV)/.installed ## Build django-mogilefs (wheel and sdist in dist/) and check them with twine
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

lint: $(VENV)/.installed ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check app deploy scripts src tests

test: deps lint ## Every suite: unit, static checks, conformance, integration, site, end-to-end
	$(PY) -m pytest

test-unit: $(VENV)/.installed ## Only the fast unit tests
	$(PY) -m pytest -m unit

test-integration: $(VENV)/.installed $(VENV)/.mysqlclient ## Only the integration suite (set MOGILEFS_TRACKERS to use a real cluster)
	$(PY) -m pytest -m integration

test-e2e: $(VENV)/.installed ## Only the end-to-end suite (starts its own native stack, or E2E_SITE_URL=...)
	$(PY) -m pytest -m e2e

# DEV_ARGS: options of scripts/dev.py, e.g. DEV_ARGS="--var-dir /tmp/mystack".
DEV := $(PY) scripts/dev.py $(DEV_ARGS)

dev: deps ## The compose topology natively, no Docker: http://127.0.0.1:8080 (Ctrl-C stops it; data is kept)
	$(DEV) up

dev-down: ## Stop what `make dev` started, from another shell
	$(DEV) down

dev-status: ## What `make dev` runs (supervisor's view), and whether the site answers
	@$(DEV) status || [ $$? = 3 ] # 3: not running, an answer rather than a failure

dev-reset: ## Delete what `make dev` keeps: the site's database, the stored files, the trackers' state
	$(DEV) reset

bench: deps ## wrk benchmark of the avatar paths on a fresh native stack (about 4 minutes), into docs/bench.md
	$(PY) scripts/bench.py

bench-scale: deps ## Costs as a fresh native stack fills to 1k, 10k, 100k files (BENCH_SCALE_STEPS), into docs/bench.md
	$(PY) scripts/bench_scale.py

screenshots: deps ## Refresh docs/screenshots with the browser test
	E2E_SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest -m e2e tests/e2e/test_browser.py
