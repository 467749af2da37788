# Sourced by the other scripts: paths and small helpers. Everything runs on 127.0.0.1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${IMAGEHUB_VAR:-$ROOT/var}"
VENV="${IMAGEHUB_VENV:-$ROOT/.venv}"
mkdir -p "$VAR/log" "$VAR/run" "$VAR/secrets"

log() { printf '[imagehub] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || die "$what did not come up within ${secs}s"
    sleep 0.3
  done
}

# A pidfile counts only while its process is alive *and* is what we started (its command line
# contains PATTERN, `nameko run` by default): after a reboot the number may be someone else's.
pid_alive() { # pid_alive PIDFILE [PATTERN]
  [ -f "$1" ] || return 1
  local pid; pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -- "${2:-nameko run}" >/dev/null
}

# A random secret, hex (BYTES of entropy, 24 by default).
random_secret() { head -c "${1:-24}" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# The webhook's bearer token: from the environment, else a development one made once per checkout.
webhook_token() {
  if [ -n "${WEBHOOK_TOKEN:-}" ]; then printf '%s' "$WEBHOOK_TOKEN"; return; fi
  local f="$VAR/secrets/webhook_token"
  [ -s "$f" ] || (umask 077; random_secret 32 > "$f")
  cat "$f"
}

# The key the gateway derives its CSRF tokens with (made once per checkout, kept).
gateway_secret_file() {
  local f="$VAR/secrets/gateway-secret"
  [ -s "$f" ] || (umask 077; random_secret 32 > "$f")
  printf '%s' "$f"
}

REGISTRY_PORT="${REGISTRY_PORT:-5000}"
# The developers' console and HTTP API (services/gateway).
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
GATEWAY_ADDRESS="${GATEWAY_ADDRESS:-127.0.0.1:$GATEWAY_PORT}"
WEBHOOK_PORT="${WEBHOOK_PORT:-8000}"
# The token service the registry delegates authentication to (services/auth). services.sh hands
# the auth service these same values (its config.yml reads AUTH_ADDRESS, AUTH_ISSUER and
# AUTH_SERVICE), so the registry's auth.token section and the tokens it is given always agree.
AUTH_PORT="${AUTH_PORT:-5001}"
AUTH_ADDRESS="${AUTH_ADDRESS:-127.0.0.1:$AUTH_PORT}"
AUTH_ISSUER="${AUTH_ISSUER:-imagehub-auth}"
AUTH_SERVICE="${AUTH_SERVICE:-imagehub-registry}"
AUTH_REALM="http://$AUTH_ADDRESS/token"
# Secrets the bootstrap keeps (python -m auth.manage): the platform admin's password, the
# catalogue's robot secret, and the docker CLI configuration seed-library.sh logs in with.
ADMIN_USER="${IMAGEHUB_ADMIN:-admin}"
ADMIN_PASSWORD_FILE="$VAR/secrets/auth-admin-password"
CATALOG_ROBOT_SECRET_FILE="$VAR/secrets/catalog-robot"
LIBRARY_ROBOT_SECRET_FILE="$VAR/secrets/library-robot"  # pushes what the library mirror copies (library/ only)
ADMIN_DOCKER_CONFIG="$VAR/secrets/docker-admin"
DOCKER2_SOCK="${DOCKER2_SOCK:-/var/run/imagehub-docker2.sock}"
# The broker: its administrator (scripts/infra.sh makes it, machine-wide), and the suite's vhost,
# whose users (one per service and kind of caller, deploy/broker/access.yml) keep their AMQP URIs
# in $BROKER_SECRETS/<user>.uri (made by `make services`).
BROKER_OPERATOR_FILE="${IMAGEHUB_BROKER_OPERATOR_FILE:-/etc/imagehub/rabbitmq-operator}"
# The imagehub PostgreSQL role's password (scripts/infra.sh makes it, machine-wide).
PG_PASSWORD_FILE="${IMAGEHUB_PG_PASSWORD_FILE:-/etc/imagehub/postgres-imagehub}"
BROKER_VHOST="${IMAGEHUB_BROKER_VHOST:-imagehub}"
BROKER_SECRETS="$VAR/secrets/amqp"
