#!/usr/bin/env bash
# Starts (or stops) the imagehub services as `nameko run` processes, logs in var/log.
#   scripts/services.sh start|stop|status
# Idempotent: a service already running with the same settings is left alone (see settings_of).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
# auth first: the registry asks it for every token, the catalogue and the deployer through it.
# The gateway last: it answers with what the others serve.
SERVICES=(auth catalog webhook deployer gateway)
export WEBHOOK_TOKEN="$(webhook_token)"
# The registry's auth.token section is rendered from the same values (infra.sh).
export AUTH_ADDRESS AUTH_ISSUER AUTH_SERVICE GATEWAY_ADDRESS
# Everything else comes from each service's config.yml (its ${VAR:default} values).

rpc_ready() { # rpc_ready SERVICE: a consumer is on the service's RPC queue
  rabbitmqctl -q list_queues -p "$BROKER_VHOST" name consumers 2>/dev/null | grep -E "^rpc-$1[[:space:]]+[1-9]" >/dev/null
}

# The accounts make up needs, straight in the auth database (idempotent; the files are the
# source of truth): the platform admin (seed-library.sh pushes the public library as it), and
# the catalogue's platform robot (reads every namespace, lists _catalog, deletes tags), and the
# library robot (pushes to library/ only: what the library mirror copies from upstreams).
bootstrap_auth() {
  "$VENV/bin/python" -m auth.manage ensure-admin "$ADMIN_USER" --password-file "$ADMIN_PASSWORD_FILE" \
    >/dev/null 2>>"$VAR/log/auth.log" || { tail -5 "$VAR/log/auth.log"; die "auth: could not ensure the admin account"; }
  CATALOG_ROBOT="$("$VENV/bin/python" -m auth.manage ensure-robot catalog --platform --actions pull,delete \
    --catalog --secret-file "$CATALOG_ROBOT_SECRET_FILE" 2>>"$VAR/log/auth.log")" \
    || { tail -5 "$VAR/log/auth.log"; die "auth: could not ensure the catalogue's robot"; }
  LIBRARY_ROBOT="$("$VENV/bin/python" -m auth.manage ensure-robot library --platform --namespace library \
    --actions pull,push --secret-file "$LIBRARY_ROBOT_SECRET_FILE" 2>>"$VAR/log/auth.log")" \
    || { tail -5 "$VAR/log/auth.log"; die "auth: could not ensure the library robot"; }
}

# The suite's vhost and its broker users, one per service and kind of caller, each allowed only
# what deploy/broker/access.yml gives it; their AMQP URIs (kept across runs) in $BROKER_SECRETS.
broker_users() {
  "$VENV/bin/python" -m shared.ops.broker_access apply --vhost "$BROKER_VHOST" --prefix imagehub- \
    --secrets "$BROKER_SECRETS" --operator-file "$BROKER_OPERATOR_FILE" >/dev/null \
    || die "could not make the broker users (is RabbitMQ up? make infra)"
}

# What a service is started with beyond its config.yml: its own environment and the settings it
# shares with the registry and the other services. A service running with other settings (an
# earlier `make up` before token authentication, a rotated robot secret) is restarted; one
# running with these is left alone. Only a hash is kept, in var/run/<service>.settings.
settings_of() { # settings_of SERVICE ENV...
  printf '%s\n' "$@" "WEBHOOK_TOKEN=$WEBHOOK_TOKEN" "AUTH_ADDRESS=$AUTH_ADDRESS" \
    "AUTH_ISSUER=$AUTH_ISSUER" "AUTH_SERVICE=$AUTH_SERVICE" "AUTH_KEY_FILE=$AUTH_KEY_FILE" \
    "AUTH_CERT_FILE=$AUTH_CERT_FILE" | sha256sum | cut -d' ' -f1
}

start_one() {
  local svc=$1 pidfile="$VAR/run/$1.pid"
  # Credentials go to the one service that uses them, not into everyone's environment (the
  # deployer's config.yml reads the same REGISTRY_USERNAME/PASSWORD names).
  # Each service is its own broker user.
  local env=(AMQP_URI="$(cat "$BROKER_SECRETS/$svc.uri")")
  case "$svc" in
    catalog) env+=(REGISTRY_USERNAME="$CATALOG_ROBOT" REGISTRY_PASSWORD="$(cat "$CATALOG_ROBOT_SECRET_FILE")"
                   LIBRARY_REGISTRY_USERNAME="$LIBRARY_ROBOT" LIBRARY_REGISTRY_PASSWORD="$(cat "$LIBRARY_ROBOT_SECRET_FILE")") ;;
    # A short-lived credential of the tenant's own robot, asked of auth, for every pull.
    deployer) env+=(DEPLOYER_PULL_CREDENTIALS="${DEPLOYER_PULL_CREDENTIALS:-robot}") ;;
    gateway) env+=(GATEWAY_SECRET_FILE="$(gateway_secret_file)") ;;
  esac
  local settings; settings="$(settings_of "$svc" "${env[@]}")"
  if pid_alive "$pidfile"; then
    [ "$(cat "$VAR/run/$svc.settings" 2>/dev/null)" != "$settings" ] || return 0
    log "$svc runs with other settings (started before token authentication, or a secret changed): restarting it"
    stop_one "$svc"
  fi
  if [ -f "services/$svc/$svc/migrate.py" ]; then
    "$VENV/bin/python" -m "$svc.migrate" >>"$VAR/log/$svc.log" 2>&1 \
      || { tail -20 "$VAR/log/$svc.log"; die "$svc migration failed"; }
  fi
  log "starting $svc"
  # Exported in a subshell that becomes the service: a secret never shows on a command line.
  (
    for kv in "${env[@]}"; do export "${kv?}"; done
    exec nohup "$VENV/bin/nameko" run --config "services/$svc/config.yml" "$svc.service"
  ) >>"$VAR/log/$svc.log" 2>&1 &
  echo $! > "$pidfile"
  echo "$settings" > "$VAR/run/$svc.settings"
}

wait_ready() {
  local svc=$1
  case "$svc" in
    webhook) wait_for 30 webhook curl -fsS "http://${WEBHOOK_ADDRESS:-127.0.0.1:$WEBHOOK_PORT}/health" ;;
    auth) wait_for 30 auth curl -fsS "http://$AUTH_ADDRESS/health" ;;
    gateway) wait_for 30 gateway curl -fsS "http://$GATEWAY_ADDRESS/health" ;;
    *) wait_for 30 "$svc" rpc_ready "$svc" ;;
  esac
  pid_alive "$VAR/run/$svc.pid" || { tail -20 "$VAR/log/$svc.log"; die "$svc exited"; }
}

stop_one() {
  local pidfile="$VAR/run/$1.pid"
  if pid_alive "$pidfile"; then
    log "stopping $1"
    local pid; pid=$(cat "$pidfile"); kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$VAR/run/$1.settings"
}

case "${1:-start}" in
  start)
    # The token service's signing key pair (made once, kept): AUTH_KEY_FILE and AUTH_CERT_FILE.
    eval "$(bash "$ROOT/scripts/auth-keys.sh")"
    broker_users
    # auth answers before the others start: the catalogue's first registry read needs a token.
    start_one auth
    wait_ready auth
    bootstrap_auth
    for s in "${SERVICES[@]:1}"; do start_one "$s"; done
    for s in "${SERVICES[@]:1}"; do wait_ready "$s"; done
    ;;
  stop)
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do stop_one "${SERVICES[i]}"; done
    ;;
  status)
    for s in "${SERVICES[@]}"; do
      if pid_alive "$VAR/run/$s.pid"; then state="up   pid $(cat "$VAR/run/$s.pid")"; else state="down"; fi
      printf '%-10s %s  (log: %s)\n' "$s" "$state" "var/log/$s.log"
    done
    printf '\nwebhook endpoint   http://%s/registry/events\n' "${WEBHOOK_ADDRESS:-127.0.0.1:$WEBHOOK_PORT}"
    printf 'registry           %s  (docker login 127.0.0.1:%s)\n' "${REGISTRY_URL:-http://127.0.0.1:$REGISTRY_PORT}" "$REGISTRY_PORT"
    printf 'console            http://%s/  (sign in as a developer account; API: http://%s/api/v1/openapi.json)\n' "$GATEWAY_ADDRESS" "$GATEWAY_ADDRESS"
    printf 'token service      http://%s/token  (accounts: python -m auth.manage, or the auth.* RPC)\n' "$AUTH_ADDRESS"
    printf 'registry admin     %s, password in %s\n' "$ADMIN_USER" "${ADMIN_PASSWORD_FILE#$ROOT/}"
    printf 'auth database      %s\n' "${AUTH_DB_URL:-sqlite:///var/auth.db}"
    printf 'catalog database   %s\n' "${CATALOG_DB_URL:-sqlite:///var/catalog.db}"
    printf 'deployer database  %s\n' "${DEPLOYER_DB_URL:-sqlite:///var/deployer.db}"
    printf 'resource pools     swarm (default): manager unix:///var/run/docker.sock, nodes local-1 and local-2\n'
    printf '                   engines: local-1 unix:///var/run/docker.sock, local-2 unix://%s\n' "$DOCKER2_SOCK"
    printf 'broker             vhost %s; users imagehub-<service|admin|gateway|platform>, AMQP URIs in %s/\n' "$BROKER_VHOST" "${BROKER_SECRETS#$ROOT/}"
    printf 'CLI                AMQP_URI="$(cat %s/admin.uri)" %s/bin/imagehub --help\n' "${BROKER_SECRETS#$ROOT/}" "$VENV"
    printf 'metrics            http://127.0.0.1:9101-9105/metrics  (auth, catalog, webhook, deployer, gateway; docs/operations.md)\n'
    printf 'stop everything    make down\n'
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
