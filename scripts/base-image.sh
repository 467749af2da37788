#!/usr/bin/env bash
# Builds the base image of the service images, locally: nothing can be pulled from the internet
# here, so this is a minimal Debian root filesystem made with debootstrap from the OS package
# mirror that apt is already configured with, holding python3 (and venv, for the build stage),
# brought up to date from the same sources (updates, security), with skopeo, and `docker import`ed.
#   scripts/base-image.sh            build if missing; print the tag on stdout
#   scripts/base-image.sh --refresh  build again (to take in new Debian updates)
# Idempotent: the tag is keyed by what goes into the image (this script, suite, mirror, packages),
# so a machine builds it once; an image with the tag already present is left alone.
source "$(dirname "$0")/lib.sh"

PACKAGES="python3,python3-venv,ca-certificates"
# Installed with apt in the new root once it is complete (debootstrap's own configure stage fails
# on containers-common's maintainer script). skopeo: the catalog copies the public library from
# upstream registries with it (catalog.mirror); one base for every service keeps one image to
# build, at the price of some 30 MB in the others.
LATER_PACKAGES="skopeo"
REPO="${IMAGEHUB_BASE_REPO:-imagehub/base}"
DOCKER="${DOCKER:-docker}"
refresh=false
[ "${1:-}" = "--refresh" ] && refresh=true

command -v debootstrap >/dev/null || die "debootstrap is missing: run scripts/install.sh (make install)"

# shellcheck disable=SC1091
SUITE="${BASE_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-}")}"
[ -n "$SUITE" ] || die "cannot tell the Debian suite from /etc/os-release; set BASE_SUITE"

# Every apt source line of this machine as "URI SUITE COMPONENTS", from both formats
# (one-line sources.list and deb822 *.sources).
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { s = $2 " " $3; for (i = 4; i <= NF; i++) s = s " " $i; print s }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no") { n = split(uris, u, " "); m = split(suites, s, " ");
                              for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j], comps } types = uris = suites = comps = enabled = "" }
         /^[ \t]*#/ { next }
         /^[ \t]*$/ { flush(); next }
         { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ /, "");
           if (key == "types") types = $0; else if (key == "uris") uris = $0;
           else if (key == "suites") suites = $0; else if (key == "components") comps = $0;
           else if (key == "enabled") enabled = tolower($0) }
         END { flush() }' "$f"
  done
}

# The mirror of the suite itself (not -updates/-security, not another vendor's repository).
MIRROR="${BASE_MIRROR:-$(apt_sources | awk -v s="$SUITE" '$2 == s && / main( |$)/ { print $1; exit }')}"
[ -n "$MIRROR" ] || die "no apt source for suite $SUITE with component main; set BASE_MIRROR"
# The sources the image keeps for its upgrade: the suite and its -updates/-security, as here.
IMAGE_SOURCES="$(apt_sources | awk -v s="$SUITE" '$2 == s || $2 == s "-updates" || $2 == s "-security" { print "deb " $0 }')"

key="$(printf '%s\n' "$(cat "$0")" "$SUITE" "$MIRROR" "$PACKAGES" "$LATER_PACKAGES" "$IMAGE_SOURCES" | sha256sum | cut -c1-12)"
TAG="$REPO:$SUITE-$key"

exec 9>"$VAR/run/base-image.lock"
flock 9  # one build at a time per machine (make images and a test may both ask)

if ! $refresh && $DOCKER image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG"
  exit 0
fi

log "building base image $TAG: debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR"
started=$SECONDS
root="$(mktemp -d "${TMPDIR:-/tmp}/imagehub-base.XXXXXX")"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" \
  >"$VAR/log/base-image.log" 2>&1 || { tail -20 "$VAR/log/base-image.log"; die "debootstrap failed"; }

# Updates and security fixes from the same sources this machine uses, then no apt lists or
# caches in the image.
printf '%s\n' "$IMAGE_SOURCES" > "$root/etc/apt/sources.list"
cp /etc/resolv.conf "$root/etc/resolv.conf"
{ chroot "$root" apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -y -qq -o Dpkg::Options::=--force-confold upgrade && \
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -y -qq --no-install-recommends install $LATER_PACKAGES; } \
  >>"$VAR/log/base-image.log" 2>&1 || { tail -20 "$VAR/log/base-image.log"; die "upgrade or install of $LATER_PACKAGES in the base image failed"; }
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/* "$root"/tmp/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
: > "$root/etc/resolv.conf"

tar --numeric-owner -C "$root" -c . | $DOCKER import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/usr/bin/python3"]' \
  --message "debootstrap $SUITE minbase + $PACKAGES, then $LATER_PACKAGES, from $MIRROR" - "$TAG" >/dev/null
$DOCKER tag "$TAG" "$REPO:$SUITE"
# Bases of an earlier key are superseded (an image built on one keeps its layers).
$DOCKER images --format '{{.Repository}}:{{.Tag}}' "$REPO" | grep -E ":$SUITE-[0-9a-f]{12}$" \
  | grep -v ":$SUITE-$key$" | xargs -r $DOCKER rmi >/dev/null 2>&1 || true
log "base image $TAG built in $((SECONDS - started))s"
echo "$TAG"
