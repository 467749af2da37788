#!/usr/bin/env bash
# Applies an overlay to the cluster of the current kubectl context, migrations first:
#   deploy/k8s/deploy.sh overlays/dev|overlays/prod
# 1. render the overlay (the cluster's own kubectl, KUBECTL, default `kubectl`);
# 2. an overlay with the dev Docker engine (overlays/dev): make its throw-away TLS material once
#    per checkout (dev-engine-certs.sh, under var/k8s/<namespace>/engine-tls) and the Secrets
#    imagehub-dind-tls (the engine's) and imagehub-deployer-engine-tls (the deployer's);
# 3. delete the previous migration Job (a Job's pod template cannot change);
# 4. apply everything: the new pods wait in their wait-for-schema init containers while the old
#    ones keep serving;
# 5. wait for the migration Job, then for every Deployment's rollout.
# Idempotent: applying the same overlay again migrates nothing and rolls nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
KUBECTL="${KUBECTL:-kubectl}"
overlay="${1:?usage: $0 overlays/dev|overlays/prod}"
[ -d "$overlay" ] || overlay="$here/$overlay"
[ -f "$overlay/kustomization.yaml" ] || { echo "no kustomization in $overlay" >&2; exit 2; }

rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
$KUBECTL kustomize "$overlay" > "$rendered"
ns="$(awk '/^kind: Namespace$/ { ns = 1 } ns && /^  name: / { print $2; exit }' "$rendered")"
[ -n "$ns" ] || { echo "the overlay makes no Namespace" >&2; exit 2; }

echo "== $overlay -> namespace $ns"
if grep -q 'secretName: imagehub-dind-tls$' "$rendered"; then
  certs="$("$here/dev-engine-certs.sh" "$here/../../var/k8s/$ns/engine-tls" "$ns")"
  $KUBECTL get namespace "$ns" >/dev/null 2>&1 || $KUBECTL create namespace "$ns"
  secret() { # NAME KEY=FILE...
    local name="$1"; shift
    $KUBECTL -n "$ns" create secret generic "$name" "${@/#/--from-file=}" --dry-run=client -o yaml \
      | $KUBECTL apply -f -
  }
  secret imagehub-dind-tls "ca.pem=$certs/ca.pem" "server.pem=$certs/server.pem" "server-key.pem=$certs/server-key.pem"
  secret imagehub-deployer-engine-tls "ca.pem=$certs/ca.pem" "client.pem=$certs/client.pem" \
    "client-key.pem=$certs/client-key.pem"
fi
$KUBECTL -n "$ns" delete job imagehub-migrate --ignore-not-found --wait=true
$KUBECTL apply -f "$rendered"
echo "== waiting for the migrations"
if ! $KUBECTL -n "$ns" wait --for=condition=complete job/imagehub-migrate --timeout=15m; then
  $KUBECTL -n "$ns" logs job/imagehub-migrate --all-containers --tail=50 || true
  echo "migrations failed: the previous version keeps serving" >&2
  exit 1
fi
echo "== waiting for the rollouts"
for deployment in $($KUBECTL -n "$ns" get deployments -l app.kubernetes.io/part-of=imagehub -o name); do
  $KUBECTL -n "$ns" rollout status "$deployment" --timeout=10m
done
