#!/usr/bin/env bash
# Builds one container image per service with the local Docker engine (deploy/images/Dockerfile).
#   scripts/images.sh [--force] [SERVICE...]     default: every services/<svc>/ with a config.yml
# Prints "SERVICE IMAGE" per service on stdout. Each image is tagged imagehub/<svc>:<key> and
# imagehub/<svc>:dev (what the dev overlay runs), where <key> is a hash of everything that goes
# into it (base image, sources, runtime requirements, Dockerfile): an image whose tag exists is
# not built again, so a second run builds nothing. IMAGEHUB_IMAGE_REPO changes the "imagehub"
# prefix (e.g. to the name of a registry to push to).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

DOCKER="${DOCKER:-docker}"
PREFIX="${IMAGEHUB_IMAGE_REPO:-imagehub}"
force=false
services=()
for arg in "$@"; do
  case "$arg" in
    --force) force=true ;;
    -*) die "usage: $0 [--force] [SERVICE...]" ;;
    *) services+=("$arg") ;;
  esac
done
if [ ${#services[@]} -eq 0 ]; then
  for conf in services/*/config.yml; do services+=("$(basename "$(dirname "$conf")")"); done
fi
for svc in "${services[@]}"; do
  [ -f "services/$svc/config.yml" ] || die "no service $svc (services/$svc/config.yml)"
done

base="$(bash scripts/base-image.sh)"

# The build context, assembled rather than the whole checkout: only what the image needs, and
# no var/, .venv/ or other local state.
ctx="$(mktemp -d "${TMPDIR:-/tmp}/imagehub-images.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/src/build"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked files and new ones not ignored: what a commit of this tree would hold.
  git -C "$ROOT" ls-files -z -c -o --exclude-standard -- pyproject.toml shared services cli \
    | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -C "$ctx/src" -xf -
else
  tar --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml shared services cli | tar -C "$ctx/src" -xf -
fi
cp deploy/images/Dockerfile "$ctx/src/Dockerfile"
# requirements.txt less what only the tests need.
skip="$(grep -v '^[[:space:]]*#' deploy/images/not-in-images.txt | tr 'A-Z_' 'a-z-' | sed '/^[[:space:]]*$/d')"
awk -v skip="$skip" 'BEGIN { n = split(skip, s, "\n"); for (i = 1; i <= n; i++) drop[s[i]] = 1 }
  /^[[:space:]]*(#|$)/ { next }
  { name = tolower($0); sub(/[[:space:]]*[=<>!~;\[].*/, "", name); gsub(/_/, "-", name); if (!(name in drop)) print }' \
  requirements.txt > "$ctx/src/build/requirements-runtime.txt"
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$ctx/src/build/ca-certificates.crt"
# A reproducible tar: same files, same bytes, same key.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u+rwX,go+rX,go-w \
  -C "$ctx/src" -cf "$ctx/context.tar" .
key="$({ $DOCKER image inspect -f '{{.Id}}' "$base"; sha256sum < "$ctx/context.tar"; } | sha256sum | cut -c1-12)"

for svc in "${services[@]}"; do
  image="$PREFIX/$svc:$key"
  if $force || ! $DOCKER image inspect "$image" >/dev/null 2>&1; then
    log "building $image"
    started=$SECONDS
    # The classic builder (the engine here has no BuildKit front end to pull); host network,
    # since the engine has no bridge, for pip to reach the package index.
    DOCKER_BUILDKIT=0 $DOCKER build --network host --build-arg BASE_IMAGE="$base" \
      --build-arg SERVICE="$svc" --target runtime -t "$image" - < "$ctx/context.tar" \
      >"$VAR/log/image-$svc.log" 2>&1 || { tail -30 "$VAR/log/image-$svc.log"; die "building $image failed"; }
    log "built $image in $((SECONDS - started))s"
  fi
  $DOCKER tag "$image" "$PREFIX/$svc:dev"
  # Earlier builds of this service are superseded: drop them (one still running stays).
  $DOCKER images --format '{{.Repository}}:{{.Tag}}' "$PREFIX/$svc" \
    | grep -E ":[0-9a-f]{12}$" | grep -v ":$key$" | xargs -r $DOCKER rmi >/dev/null 2>&1 || true
  printf '%s %s\n' "$svc" "$image"
done
