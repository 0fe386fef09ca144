#!/bin/sh
# Builds the Python image's root filesystem as a tar: Debian 12 (minbase) with python3 and pytest, from
# Debian's own mirror through debootstrap. Takes minutes; needs root and `debootstrap`.
# Usage: mkrootfs.sh OUT.tar   (MIRROR=... to use another Debian mirror)
set -eu
out=${1:?usage: mkrootfs.sh OUT.tar}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || {
    echo "mkrootfs: debootstrap not found (apt-get install debootstrap)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT INT TERM
debootstrap --variant=minbase --include=python3,python3-pytest "$suite" "$root" "$mirror" >&2
# What an image does not need: package lists and caches (tens of megabytes).
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/*
tar -C "$root" --sort=name --numeric-owner -cf "$out.part" .
mv "$out.part" "$out"
