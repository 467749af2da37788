#!/usr/bin/env bash
# Installs what is missing: OS packages and the Python virtualenv. Idempotent.
source "$(dirname "$0")/lib.sh"

# chromium (and a font for its screenshots): the console's browser tests (Playwright drives it; never a download).
# skopeo: the catalog copies the public library from upstream registries with it (catalog.mirror).
OS_PACKAGES=(rabbitmq-server docker.io docker-registry busybox-static postgresql python3-venv ca-certificates curl debootstrap
  chromium fonts-dejavu-core skopeo)
missing=()
for p in "${OS_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
# A machine may carry its own builds of these (checked by command rather than package).
if [ ${#missing[@]} -gt 0 ]; then
  log "installing OS packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # A policy-rc.d keeps the packages' own service units from starting on install: we start each
  # component ourselves, on loopback, with our configuration. A machine's own policy stays.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$VAR/log/apt.log" 2>&1 \
    || { tail -20 "$VAR/log/apt.log"; die "apt-get install failed"; }
  # Nor should they come back at the next boot: the packaged registry would take :5000 on every
  # interface without notifications, and the packaged engine would make a bridge with iptables.
  if command -v systemctl >/dev/null; then
    units=()
    for p in "${missing[@]}"; do
      case "$p" in
        docker-registry) units+=(docker-registry.service) ;;
        docker.io) units+=(docker.service docker.socket) ;;
      esac
    done
    [ ${#units[@]} -eq 0 ] || systemctl disable "${units[@]}" >/dev/null 2>&1 || true
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv in $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha"
want="$(cat "$ROOT/requirements.txt" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages"
  # Playwright drives Debian's chromium: it must not try to download browsers of its own.
  { PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$VENV/bin/pip" install --disable-pip-version-check -r "$ROOT/requirements.txt" \
    && "$VENV/bin/pip" install --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"; } \
    >"$VAR/log/pip.log" 2>&1 || { tail -20 "$VAR/log/pip.log"; die "pip install failed"; }
  echo "$want" > "$stamp"
fi
