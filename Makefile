# imagehub: `make up` brings the whole suite up, `make test` runs every test.
SHELL := /bin/bash
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: up down status install infra services test test-unit bench seed images

up: install infra services seed
	@bash scripts/services.sh status

install:
	@bash scripts/install.sh

infra: install
	@bash scripts/infra.sh start

services: infra
	@bash scripts/services.sh start

seed: services
	@bash scripts/seed-library.sh

down:
	@bash scripts/services.sh stop
	@bash scripts/infra.sh stop

status:
	@bash scripts/infra.sh status
	@bash scripts/services.sh status

# The tests start their own registries and services: the shared infrastructure is all they need.
test: install
	@bash scripts/infra.sh base
	@bash scripts/test.sh $(PYTEST_ARGS)

test-unit: install
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

# One container image per service (deploy/images/Dockerfile) on a locally built Debian base;
# content-keyed, so a second run builds nothing. Kubernetes: docs/kubernetes.md.
images: infra
	@bash scripts/images.sh

# The suite's PostgreSQL (scripts/infra.sh): the benches that compare both databases make
# throw-away databases on it. BENCH_TAGS=1000000 for the million-tag catalogue of issue 16
# (about 1 min to load on each database).
PG_URL = postgresql://imagehub:$$(cat /etc/imagehub/postgres-imagehub)@127.0.0.1:5432/imagehub
BENCH_TAGS ?= 100000

bench: up
	$(VENV)/bin/python -m bench.push_to_catalog
	$(VENV)/bin/python -m bench.deploy_vs_docker_run
	$(VENV)/bin/python -m bench.deploy_swarm
	$(VENV)/bin/python -m bench.auto_deploy
	$(VENV)/bin/python -m bench.resync
	$(VENV)/bin/python -m bench.gateway
	$(VENV)/bin/python -m bench.library_mirror
	$(VENV)/bin/python -m bench.ingest --events 2000 --latency 50
	$(VENV)/bin/python -m bench.ingest --events 2000 --latency 50 --processes 2 --db-url "$(PG_URL)"
	$(VENV)/bin/python -m bench.reads --tags $(BENCH_TAGS) --repos $$(( $(BENCH_TAGS) / 10 )) --db-url "$(PG_URL)"
