#!/usr/bin/env bash
# Starts (or stops) the infrastructure: RabbitMQ, PostgreSQL, the Docker engines and the registry
# (`base`: all but the registry, what `make test` needs).
# Idempotent: starts what is not running and leaves alone what is.
#   scripts/infra.sh start|base|stop|status
source "$(dirname "$0")/lib.sh"

rabbit_up() { rabbitmqctl -q status >/dev/null 2>&1; }
start_rabbitmq() {
  # Everything of RabbitMQ's listens on loopback only: AMQP and management, epmd and the Erlang
  # distribution port. Keys a machine already set are left as they are.
  mkdir -p /etc/rabbitmq
  local conf=/etc/rabbitmq/rabbitmq.conf env=/etc/rabbitmq/rabbitmq-env.conf
  grep -qs '^listeners.tcp' "$conf" || echo 'listeners.tcp.default = 127.0.0.1:5672' >> "$conf"
  grep -qs '^management.tcp.ip' "$conf" || echo 'management.tcp.ip = 127.0.0.1' >> "$conf"
  grep -qs '^ERL_EPMD_ADDRESS' "$env" || echo 'ERL_EPMD_ADDRESS=127.0.0.1' >> "$env"
  grep -qs 'inet_dist_use_interface' "$env" \
    || echo 'export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"' >> "$env"
  if ! port_open 5672; then
    log "starting RabbitMQ"
    rabbitmq-server -detached >>"$VAR/log/rabbitmq.log" 2>&1 || true
    wait_for 90 RabbitMQ port_open 5672
    rabbitmqctl -q await_startup >/dev/null 2>&1 || true
  fi
  # nameko's test fixtures create a vhost per test through the management API.
  if ! port_open 15672; then
    log "enabling rabbitmq_management"
    rabbitmq-plugins -q enable rabbitmq_management >/dev/null
    wait_for 60 "RabbitMQ management" port_open 15672
  fi
  ensure_broker_operator
}

# The broker's administrator for imagehub, one per machine (rabbitmqctl works as root, through the
# Erlang cookie, with no password): its `user:password` in $BROKER_OPERATOR_FILE (0600), shared
# by every checkout here so that none resets another's. It makes the suite's vhosts and their
# users (shared/ops/broker_access.py); no service runs as it. RabbitMQ's own `guest` goes: with
# it, any process on this host, a tenant's container on host networking included, would be a
# broker administrator.
ensure_broker_operator() {
  local user pw users
  if [ ! -s "$BROKER_OPERATOR_FILE" ]; then
    mkdir -p "$(dirname "$BROKER_OPERATOR_FILE")"
    (umask 077; printf '%s:%s\n' imagehub-operator "$(random_secret)" > "$BROKER_OPERATOR_FILE")
  fi
  chmod 600 "$BROKER_OPERATOR_FILE"
  user="$(cut -d: -f1 "$BROKER_OPERATOR_FILE")"; pw="$(cut -d: -f2- "$BROKER_OPERATOR_FILE")"
  users="$(rabbitmqctl -q list_users 2>/dev/null | awk '{print $1}')"
  # Passwords go on stdin, not the command line (where `ps` shows them).
  if ! grep -qx "$user" <<<"$users"; then
    log "making the broker operator $user (credentials in $BROKER_OPERATOR_FILE)"
    printf '%s\n' "$pw" | rabbitmqctl -q add_user "$user" >/dev/null
  elif ! printf '%s\n' "$pw" | rabbitmqctl -q authenticate_user "$user" >/dev/null 2>&1; then
    log "resetting the broker operator's password to $BROKER_OPERATOR_FILE's"
    printf '%s\n' "$pw" | rabbitmqctl -q change_password "$user" >/dev/null
  fi
  if ! rabbitmqctl -q list_users 2>/dev/null | grep -E "^$user\s+\[administrator\]" >/dev/null; then
    rabbitmqctl -q set_user_tags "$user" administrator >/dev/null
    rabbitmqctl -q set_permissions -p / "$user" '.*' '.*' '.*' >/dev/null
  fi
  if grep -qx guest <<<"$users"; then
    log "removing RabbitMQ's guest user (an administrator to anyone on this host)"
    rabbitmqctl -q delete_user guest >/dev/null
  fi
}

pg_version() { ls /etc/postgresql 2>/dev/null | sort -n | tail -1; }

# Connections over TCP must give a password (scram-sha-256): a machine's `trust` for 127.0.0.1
# would let any process on the host, a tenant's container on host networking too, in as anyone,
# the superuser included. The Unix socket (peer/trust for root and postgres) is left as it is.
require_pg_passwords() { # require_pg_passwords VERSION
  local hba="/etc/postgresql/$1/main/pg_hba.conf"
  [ -f "$hba" ] || return 0
  if grep -Eq '^[[:space:]]*host[[:space:]].*[[:space:]]trust[[:space:]]*$' "$hba"; then
    log "PostgreSQL: password authentication for TCP connections (was trust) in $hba"
    sed -i -E 's/^([[:space:]]*host[[:space:]].*[[:space:]])trust([[:space:]]*)$/\1scram-sha-256\2/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$1" main reload
  fi
}
start_postgres() {
  local v; v="$(pg_version)"
  [ -n "$v" ] || { log "PostgreSQL not installed; skipping"; return; }
  if ! port_open 5432; then
    log "starting PostgreSQL $v"
    pg_ctlcluster --skip-systemctl-redirect "$v" main start
    wait_for 60 PostgreSQL port_open 5432
  fi
  # A role and databases for imagehub (dev and tests), with a password made once per machine in
  # $PG_PASSWORD_FILE (0600): a tenant's container shares this host's loopback, so neither a
  # well-known password nor `trust` may open the database over TCP.
  if [ ! -s "$PG_PASSWORD_FILE" ]; then
    mkdir -p "$(dirname "$PG_PASSWORD_FILE")"
    (umask 077; random_secret > "$PG_PASSWORD_FILE")
  fi
  chmod 600 "$PG_PASSWORD_FILE"
  runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='imagehub'" | grep 1 >/dev/null \
    || runuser -u postgres -- psql -qc "CREATE ROLE imagehub LOGIN CREATEDB"
  # On stdin, not the command line (where `ps` would show it).
  printf "ALTER ROLE imagehub PASSWORD '%s';\n" "$(cat "$PG_PASSWORD_FILE")" | runuser -u postgres -- psql -q >/dev/null
  require_pg_passwords "$v"
  for db in imagehub imagehub_test; do
    runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep 1 >/dev/null \
      || runuser -u postgres -- createdb -O imagehub "$db"
  done
}

docker_up() { docker -H "unix://$1" version >/dev/null 2>&1; }
start_dockerd() { # start_dockerd NAME SOCKET
  local name=$1 sock=$2
  if docker_up "$sock"; then return; fi
  log "starting Docker engine $name ($sock)"
  local extra=()
  if [ "$name" != default ]; then
    extra=(--data-root "$VAR/$name/data" --exec-root "$VAR/$name/exec" --pidfile "$VAR/run/$name.pid")
    mkdir -p "$VAR/$name"
  fi
  # No bridge, no iptables: containers use host networking and nothing leaves loopback. No new
  # privileges for any container: the deployer asks it of each container it runs, but a swarm
  # service has no such option in the Engine API 1.41 (Docker 20.10).
  nohup dockerd --host "unix://$sock" --bridge=none --iptables=false --ip-forward=false \
    --ip-masq=false --no-new-privileges "${extra[@]}" >>"$VAR/log/dockerd-$name.log" 2>&1 &
  wait_for 60 "Docker engine $name" docker_up "$sock"
}

# With token authentication on, the base endpoint answers 401 (the Bearer challenge) to a client
# without a token: that is the registry up. Anything else but 200 is not.
registry_up() {
  local code
  code="$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REGISTRY_PORT/v2/" 2>/dev/null)" || return 1
  [ "$code" = 401 ] || [ "$code" = 200 ]
}
registry_config() { # the registry's configuration, rendered from deploy/registry/config-auth.yml.in
  sed -e "s#@STORAGE@#$VAR/registry/storage#" -e "s#@PORT@#$REGISTRY_PORT#" \
    -e "s#@WEBHOOK_URL@#http://127.0.0.1:$WEBHOOK_PORT/registry/events#" \
    -e "s#@TOKEN@#$(webhook_token)#" \
    -e "s#@AUTH_REALM@#$AUTH_REALM#" -e "s#@AUTH_SERVICE@#$AUTH_SERVICE#" \
    -e "s#@AUTH_ISSUER@#$AUTH_ISSUER#" -e "s#@AUTH_CERT_FILE@#$AUTH_CERT_FILE#" \
    "$ROOT/deploy/registry/config-auth.yml.in"
}
start_registry() {
  local conf="$VAR/registry/config.yml"
  mkdir -p "$VAR/registry/storage"
  # The token service's key pair (made once): the registry trusts its certificate.
  eval "$(bash "$ROOT/scripts/auth-keys.sh")"
  case "$AUTH_CERT_FILE" in /*) ;; *) AUTH_CERT_FILE="$PWD/$AUTH_CERT_FILE" ;; esac
  local rendered
  rendered="$(registry_config)"
  if registry_up; then
    [ "$rendered" != "$(cat "$conf" 2>/dev/null)" ] || return 0
    # Running with another configuration (an earlier `make up` before token authentication, or
    # other ports, token or keys): ours is restarted with the new one; someone else's is left be.
    if ! pid_alive "$VAR/run/registry.pid" docker-registry; then
      log "a registry not started here answers on 127.0.0.1:$REGISTRY_PORT with another configuration; stop it, then 'make up'"
      return 0
    fi
    log "restarting the registry: its configuration changed (now $conf, token auth at $AUTH_REALM)"
    stop_pidfile "$VAR/run/registry.pid" docker-registry
    wait_for 30 "registry port to close" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$REGISTRY_PORT)"
  fi
  (umask 077; printf '%s\n' "$rendered" > "$conf")
  log "starting registry on 127.0.0.1:$REGISTRY_PORT (token auth at $AUTH_REALM)"
  nohup docker-registry serve "$conf" >>"$VAR/log/registry.log" 2>&1 &
  echo $! > "$VAR/run/registry.pid"
  # The registry does not need the auth service to start: tokens are checked against the
  # certificate alone, and clients get the realm from the challenge.
  wait_for 30 registry registry_up
}

# The second engine is ours alone: stop its containers with it.
stop_docker2() {
  if docker_up "$DOCKER2_SOCK"; then
    docker -H "unix://$DOCKER2_SOCK" ps -aq | xargs -r docker -H "unix://$DOCKER2_SOCK" rm -f >/dev/null
  fi
  stop_pidfile "$VAR/run/docker2.pid" dockerd
}

stop_pidfile() { # stop_pidfile FILE PATTERN
  if pid_alive "$1" "$2"; then
    local pid; pid="$(cat "$1")"; kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

# The two engines form one Docker Swarm (the deployer's default pool, kind swarm): the default
# engine is its manager on 127.0.0.1:2377, the second joins as a worker advertising 127.0.0.2
# (each node needs an address of its own for the swarm's ports; loopback has the whole 127/8).
# Each node carries the label imagehub.host (local-1, local-2): both have this machine's hostname.
swarm_state() { docker -H "unix://$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null; }
node_id() { docker -H "unix://$1" info --format '{{.Swarm.NodeID}}' 2>/dev/null; }
start_swarm() {
  local one=/var/run/docker.sock two="$DOCKER2_SOCK" manager=(docker -H unix:///var/run/docker.sock)
  case "$(swarm_state "$one")" in
    active) ;;
    inactive)
      log "forming a swarm of the two engines: the default engine manages it on 127.0.0.1:2377"
      "${manager[@]}" swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null
      # The routing mesh's overlay network (a private range): nothing of ours may use it.
      echo y | "${manager[@]}" network rm ingress >/dev/null 2>&1 || true
      ;;
    *) die "the default Docker engine's swarm is $(swarm_state "$one"); fix it (docker swarm leave --force) and retry" ;;
  esac
  [ "$("${manager[@]}" info --format '{{.Swarm.ControlAvailable}}')" = true ] \
    || die "the default Docker engine is in a swarm but not a manager of it"
  local second; second="$(node_id "$two")"
  # A second engine in another swarm (or one this manager no longer knows) leaves it first.
  if [ -n "$second" ] && ! "${manager[@]}" node inspect "$second" >/dev/null 2>&1; then
    log "engine docker2 belongs to another swarm: leaving it"
    docker -H "unix://$two" swarm leave --force >/dev/null
    second=""
  fi
  # The swarm is this machine's two engines, and only one docker2 runs here (its socket is
  # machine-wide), so any other worker is an earlier docker2 whose data is gone (a clone's own
  # data root after another checkout's `make down`). It is removed whatever its status: a
  # docker2 stopped seconds ago still reads Ready until the manager misses its heartbeats.
  local stale
  stale="$("${manager[@]}" node ls --format '{{.ID}} {{.ManagerStatus}}' \
    | awk -v keep="$second" 'NF == 1 && $1 != keep {print $1}')"
  if [ -n "$stale" ]; then
    log "removing swarm node(s) of an earlier docker2: $(echo $stale)"
    echo "$stale" | xargs -r "${manager[@]}" node rm --force >/dev/null
  fi
  if [ -z "$second" ]; then
    log "joining engine docker2 to the swarm (advertising 127.0.0.2)"
    docker -H "unix://$two" swarm join --token "$("${manager[@]}" swarm join-token -q worker)" \
      --advertise-addr 127.0.0.2 --listen-addr 127.0.0.2:2377 127.0.0.1:2377 >/dev/null
    second="$(node_id "$two")"
  fi
  wait_for 60 "swarm node docker2 ready" bash -c \
    "[ \"\$(docker node inspect --format '{{.Status.State}}' $second 2>/dev/null)\" = ready ]"
  "${manager[@]}" node update --label-add imagehub.host=local-1 "$(node_id "$one")" >/dev/null
  "${manager[@]}" node update --label-add imagehub.host=local-2 "$second" >/dev/null
}

start_base() {
  start_rabbitmq
  start_postgres
  start_dockerd default /var/run/docker.sock
  # A second engine on this machine: the other host of the two-host resource pool.
  start_dockerd docker2 "$DOCKER2_SOCK"
  start_swarm
}

case "${1:-start}" in
  start)
    start_base
    start_registry
    ;;
  base)
    # What the tests need (they run registries of their own): not the registry on
    # $REGISTRY_PORT, which belongs to `make up` — a `make test` from another checkout must
    # not start one there with its own keys.
    start_base
    ;;
  stop)
    # Stops only what this project started itself: the registry. RabbitMQ, PostgreSQL and the
    # Docker engine are machine-wide and may serve others.
    stop_pidfile "$VAR/run/registry.pid" docker-registry
    stop_docker2
    ;;
  status)
    port_open 5672 && echo "rabbitmq   up   amqp://127.0.0.1:5672  (management http://127.0.0.1:15672, operator in $BROKER_OPERATOR_FILE)" || echo "rabbitmq   down"
    port_open 5432 && echo "postgresql up   127.0.0.1:5432" || echo "postgresql down"
    docker_up /var/run/docker.sock && echo "docker     up   unix:///var/run/docker.sock" || echo "docker     down"
    docker_up "$DOCKER2_SOCK" && echo "docker2    up   unix://$DOCKER2_SOCK" || echo "docker2    down"
    [ "$(swarm_state /var/run/docker.sock)" = active ] \
      && echo "swarm      up   $(docker node ls -q 2>/dev/null | wc -l) node(s), manager 127.0.0.1:2377" || echo "swarm      down"
    registry_up && echo "registry   up   http://127.0.0.1:$REGISTRY_PORT  (token auth: $AUTH_REALM)" || echo "registry   down"
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
