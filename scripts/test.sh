#!/usr/bin/env bash
# Runs the whole suite against the real infrastructure (started by `make infra`).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
set +e
# eventlet warns of its own deprecation at import, before pytest's filters apply: cosmetic.
PYTHONWARNINGS="ignore::DeprecationWarning" "$VENV/bin/pytest" "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
if [ "$rc" -eq 5 ]; then die "pytest collected no tests"; fi
exit "$rc"
