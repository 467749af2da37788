#!/usr/bin/env bash
# Builds a small image locally from the OS's busybox-static (nothing is pulled from the internet):
#   scripts/busybox-image.sh IMAGE[:TAG] [MARKER]
# MARKER is written to /etc/imagehub-build, so different markers give different digests.
# The image serves its root with busybox httpd on $PORT (default 8080) when run without a command.
source "$(dirname "$0")/lib.sh"
image=${1:?usage: busybox-image.sh IMAGE[:TAG] [MARKER]}
marker=${2:-$image}
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/www" "$tmp/tmp"
cp "$busybox" "$tmp/bin/busybox"
for applet in sh ls cat echo sleep httpd wget env ps; do ln -s busybox "$tmp/bin/$applet"; done
printf '%s\n' "$marker" > "$tmp/etc/imagehub-build"
printf '%s\n' "$marker" > "$tmp/www/index.html"
# Fixed mtimes and owners: the same marker gives the same layer.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp" -c . \
  | docker import \
      -c 'ENV PORT=8080' \
      -c 'CMD ["/bin/sh", "-c", "exec httpd -f -p 127.0.0.1:${PORT} -h /www"]' \
      -m "imagehub busybox image ($marker)" - "$image" >/dev/null
echo "$image"
