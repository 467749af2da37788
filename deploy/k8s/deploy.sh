#!/usr/bin/env bash
# Applies an overlay to the cluster of the current kubectl context, migrations first:
#   deploy/k8s/deploy.sh overlays/dev|overlays/prod
# 1. render the overlay (the cluster's own kubectl, KUBECTL, default `kubectl`);
# 2. delete the previous migration Job (a Job's pod template cannot change);
# 3. apply everything: the new pods wait in their wait-for-schema init containers while the old
#    ones keep serving;
# 4. wait for the migration Job, then for every Deployment's rollout.
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
