#!/usr/bin/env bash
# Pushes a real public-library image (built locally from busybox) so a new installation shows a
# non-empty public library. Idempotent: skipped when the registry already has it.
source "$(dirname "$0")/lib.sh"
ref="127.0.0.1:$REGISTRY_PORT/library/busybox"
if curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/library/busybox/manifests/latest" \
   -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' 2>/dev/null; then
  exit 0
fi
# sed reads busybox's whole help text: `head -1` closed the pipe early, and under pipefail the
# SIGPIPE busybox got failed `make up` (exit 141).
version=$(busybox 2>/dev/null | sed -n '1s/^BusyBox v\([0-9.]*\).*/\1/p')
version=${version:-1}
log "pushing $ref:$version and :latest to the public library"
bash "$ROOT/scripts/busybox-image.sh" "$ref:$version" "busybox $version" >/dev/null
docker tag "$ref:$version" "$ref:latest"
docker push -q "$ref:$version" >/dev/null
docker push -q "$ref:latest" >/dev/null
