#!/usr/bin/env bash
# The code's shape (scripts/lint.sh), then the whole suite against the real infrastructure (started
# by `make infra`), in parallel shards (tests/support/parallel.py). Arguments go to pytest.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
bash "$ROOT/scripts/lint.sh"
set +e
# eventlet warns of its own deprecation at import, before pytest's filters apply: cosmetic.
PYTHONWARNINGS="ignore::DeprecationWarning" "$VENV/bin/python" -m tests.support.parallel -- "$@"
rc=$?
set -e
# Nothing collected is a broken suite, not a pass.
if [ "$rc" -eq 5 ]; then die "pytest collected no tests"; fi
exit "$rc"
