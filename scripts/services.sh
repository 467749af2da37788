#!/usr/bin/env bash
# Starts (or stops) the imagehub services as `nameko run` processes, logs in var/log.
#   scripts/services.sh start|stop|status
# Idempotent: a service already running is left alone.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
SERVICES=(catalog webhook deployer)
export WEBHOOK_TOKEN="$(webhook_token)"
# Everything else comes from each service's config.yml (its ${VAR:default} values).

rpc_ready() { # rpc_ready SERVICE: a consumer is on the service's RPC queue
  rabbitmqctl -q list_queues name consumers 2>/dev/null | grep -E "^rpc-$1[[:space:]]+[1-9]" >/dev/null
}

start_one() {
  local svc=$1 pidfile="$VAR/run/$1.pid"
  if pid_alive "$pidfile"; then return; fi
  if [ -f "services/$svc/$svc/migrate.py" ]; then
    "$VENV/bin/python" -m "$svc.migrate" >>"$VAR/log/$svc.log" 2>&1 \
      || { tail -20 "$VAR/log/$svc.log"; die "$svc migration failed"; }
  fi
  log "starting $svc"
  nohup "$VENV/bin/nameko" run --config "services/$svc/config.yml" "$svc.service" \
    >>"$VAR/log/$svc.log" 2>&1 &
  echo $! > "$pidfile"
}

wait_ready() {
  local svc=$1
  case "$svc" in
    webhook) wait_for 30 webhook curl -fsS "http://${WEBHOOK_ADDRESS:-127.0.0.1:$WEBHOOK_PORT}/health" ;;
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
  rm -f "$pidfile"
}

case "${1:-start}" in
  start)
    for s in "${SERVICES[@]}"; do start_one "$s"; done
    for s in "${SERVICES[@]}"; do wait_ready "$s"; done
    ;;
  stop)
    for s in "${SERVICES[@]}"; do stop_one "$s"; done
    ;;
  status)
    for s in "${SERVICES[@]}"; do
      if pid_alive "$VAR/run/$s.pid"; then state="up   pid $(cat "$VAR/run/$s.pid")"; else state="down"; fi
      printf '%-10s %s  (log: %s)\n' "$s" "$state" "var/log/$s.log"
    done
    printf '\nwebhook endpoint   http://%s/registry/events\n' "${WEBHOOK_ADDRESS:-127.0.0.1:$WEBHOOK_PORT}"
    printf 'registry           %s\n' "${REGISTRY_URL:-http://127.0.0.1:$REGISTRY_PORT}"
    printf 'catalog database   %s\n' "${CATALOG_DB_URL:-sqlite:///var/catalog.db}"
    printf 'deployer database  %s\n' "${DEPLOYER_DB_URL:-sqlite:///var/deployer.db}"
    printf 'resource pool      default: unix:///var/run/docker.sock, unix://%s\n' "$DOCKER2_SOCK"
    printf 'CLI                %s/bin/imagehub --help\n' "$VENV"
    printf 'stop everything    make down\n'
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
