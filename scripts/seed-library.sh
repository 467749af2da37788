#!/usr/bin/env bash
# Pushes a real public-library image (built locally from busybox) so a new installation shows a
# non-empty public library. Idempotent: skipped when the registry already has it.
# Only a platform admin may push to library/: this logs in as the admin that services.sh made
# (python -m auth.manage ensure-admin), with a docker configuration of its own, so the user's
# ~/.docker is never touched.
source "$(dirname "$0")/lib.sh"
ref="127.0.0.1:$REGISTRY_PORT/library/busybox"
[ -s "$ADMIN_PASSWORD_FILE" ] || die "no admin password in $ADMIN_PASSWORD_FILE: run 'make services' first"

# Is it there? The registry wants a token: ask the token service for one (pull of library/busybox).
token="$(curl -fsS -u "$ADMIN_USER:$(cat "$ADMIN_PASSWORD_FILE")" -G "$AUTH_REALM" \
  --data-urlencode "service=$AUTH_SERVICE" --data-urlencode "scope=repository:library/busybox:pull" \
  | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])')" \
  || die "the token service at $AUTH_REALM refused the admin '$ADMIN_USER'"
if curl -fsS -o /dev/null -H "Authorization: Bearer $token" \
   -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
   "http://127.0.0.1:$REGISTRY_PORT/v2/library/busybox/manifests/latest" 2>/dev/null; then
  exit 0
fi
# sed reads busybox's whole help text: `head -1` closed the pipe early, and under pipefail the
# SIGPIPE busybox got failed `make up` (exit 141).
version=$(busybox 2>/dev/null | sed -n '1s/^BusyBox v\([0-9.]*\).*/\1/p')
version=${version:-1}
log "pushing $ref:$version and :latest to the public library (as $ADMIN_USER)"
mkdir -p "$ADMIN_DOCKER_CONFIG" && chmod 700 "$ADMIN_DOCKER_CONFIG"
export DOCKER_CONFIG="$ADMIN_DOCKER_CONFIG"
docker login "127.0.0.1:$REGISTRY_PORT" -u "$ADMIN_USER" --password-stdin < "$ADMIN_PASSWORD_FILE" >/dev/null \
  || die "docker login 127.0.0.1:$REGISTRY_PORT as $ADMIN_USER failed"
bash "$ROOT/scripts/busybox-image.sh" "$ref:$version" "busybox $version" >/dev/null
docker tag "$ref:$version" "$ref:latest"
docker push -q "$ref:$version" >/dev/null
docker push -q "$ref:latest" >/dev/null
