#!/bin/sh
# Builds the busybox image's root filesystem as a tar, from Debian's busybox-static, offline.
# Usage: mkrootfs.sh OUT.tar   (BUSYBOX=/path/to/busybox to use another static binary)
set -eu
out=${1:?usage: mkrootfs.sh OUT.tar}
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "mkrootfs: $bb not found (apt-get install busybox-static)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT INT TERM
for d in bin sbin usr/bin usr/sbin etc root tmp proc sys dev; do mkdir -p "$root/$d"; done
chmod 755 "$root"
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -s /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
# Fixed order, owners and times: the same busybox gives the same tar, so rebuilds hit the cache.
tar -C "$root" --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -cf "$out.part" .
mv "$out.part" "$out"
