#!/usr/bin/env bash
# Renders a kustomization the way `kubectl kustomize` does, with a kubectl the project installs
# itself: Debian's kubernetes-client package (kubectl 1.20, kustomize v2.0.3 built in), unpacked
# into var/tools/ rather than installed, so it never clashes with a kubectl the machine already has
# (a cloud SDK's, say). The manifests stick to what that kustomize reads, which newer ones
# (kubectl 1.21+, kustomize 4/5) read too, with deprecation warnings only.
#   deploy/k8s/kustomize.sh DIR          print the rendered manifests of DIR
#   deploy/k8s/kustomize.sh --path       install if needed, print the kubectl's path
# Idempotent: the package is fetched once per version.
source "$(dirname "$0")/../../scripts/lib.sh"

PACKAGE=kubernetes-client
tools="$VAR/tools"
mkdir -p "$tools"

installed_kubectl() { # the newest unpacked one
  ls -d "$tools/$PACKAGE"_*/usr/bin/kubectl 2>/dev/null | sort -V | tail -1
}

ensure_kubectl() {
  exec 8>"$tools/.$PACKAGE.lock"
  flock 8
  local version
  version="$(apt-cache policy "$PACKAGE" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')"
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    # A machine whose package lists are missing or old: the same step scripts/install.sh takes.
    local kubectl; kubectl="$(installed_kubectl)"
    if [ -n "$kubectl" ]; then echo "$kubectl"; return; fi
    apt-get update -qq >/dev/null
    version="$(apt-cache policy "$PACKAGE" 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')"
    { [ -n "$version" ] && [ "$version" != "(none)" ]; } || die "no $PACKAGE package in the apt sources"
  fi
  local dir="$tools/${PACKAGE}_${version//[:+~]/_}"
  if [ ! -x "$dir/usr/bin/kubectl" ]; then
    log "unpacking $PACKAGE $version into ${dir#"$ROOT/"}"
    local tmp; tmp="$(mktemp -d "$tools/.download.XXXXXX")"
    # apt's sandbox user cannot write into our tree: download as root, no warning about it.
    (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$PACKAGE=$version" >/dev/null) \
      || { rm -rf "$tmp"; die "apt-get download $PACKAGE=$version failed"; }
    rm -rf "$dir.new" && dpkg-deb -x "$tmp"/*.deb "$dir.new" && rm -rf "$dir" && mv "$dir.new" "$dir"
    rm -rf "$tmp"
  fi
  echo "$dir/usr/bin/kubectl"
}

case "${1:-}" in
  --path) ensure_kubectl ;;
  ""|-*) die "usage: $0 DIR | --path" ;;
  *) kubectl="$(ensure_kubectl)"; exec "$kubectl" kustomize "$1" ;;
esac
