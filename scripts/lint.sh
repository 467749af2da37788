#!/usr/bin/env bash
# The code's shape, checked before the tests: ruff (lint and format) on the whole tree, mypy on
# shared/, the services and the CLI (configuration in pyproject.toml). Fails on the first finding.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
log "ruff check"
"$VENV/bin/ruff" check --no-cache .
log "ruff format --check"
"$VENV/bin/ruff" format --no-cache --check .
log "mypy"
"$VENV/bin/mypy" --no-incremental
