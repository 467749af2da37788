#!/usr/bin/env bash
# THROW-AWAY TLS material for the dev overlay's Docker engine (overlays/dev/dind.yaml), made
# once per checkout on the developer's machine, never in git: a CA, the engine's server
# certificate (for the names the deployer dials: dind, dind.<namespace>.svc…) and the
# deployer's client certificate. dockerd runs with --tlsverify, so only a holder of a client
# certificate of this CA drives the engine; a CA key in git would give that to anyone.
#   deploy/k8s/dev-engine-certs.sh DIR NAMESPACE     writes DIR/{ca,server,client}{,-key}.pem
# Idempotent: existing files are kept (delete DIR to make new ones).
set -euo pipefail
dir="${1:?usage: $0 DIR NAMESPACE}"
ns="${2:?usage: $0 DIR NAMESPACE}"
days=825
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
umask 077
if [ ! -s ca.pem ]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout ca-key.pem -out ca.pem \
    -days "$days" -subj "/CN=imagehub dev engine CA (throw-away)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  rm -f server.pem client.pem
fi
issue() { # NAME SUBJECT EXTENSIONS
  [ -s "$1.pem" ] && return
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$1-key.pem" -out "$1.csr" \
    -subj "$2" 2>/dev/null
  printf '%b' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$days" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue server "/CN=dind" \
  "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:dind,DNS:dind.$ns,DNS:dind.$ns.svc,DNS:dind.$ns.svc.cluster.local,DNS:localhost,IP:127.0.0.1\n"
issue client "/CN=imagehub-deployer" \
  "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
echo "$dir"
