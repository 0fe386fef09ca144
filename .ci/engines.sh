#!/usr/bin/env bash
# Installs and starts the container engines the tests need, on a fresh Debian 12 machine, and
# builds the test image spawnkit-busybox:latest on both. Safe to run again: what is installed
# is not reinstalled, a daemon that answers is not restarted, an image that exists is rebuilt
# only from the build cache.
#
# Usage:  source .ci/engines.sh          (exports the variables below into the caller)
#     or  eval "$(bash .ci/engines.sh)"   (stdout carries only the `export` lines)
# Exports CONTAINERS_CONF, CONTAINER_HOST, DOCKER_HOST and SPAWNKIT_TEST_IMAGE, also kept in
# $SPAWNKIT_CI_STATE/engines.env (default /tmp/spawnkit-ci). Progress goes to stderr.
#
# This machine's Podman (4.3, cgroup v1) needs runc and ulimits of at most 1024: that
# workaround lives here, in the containers.conf this script writes, and nowhere in spawnkit.
_spawnkit_engines_here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

_spawnkit_engines() {
set -euo pipefail
here=$_spawnkit_engines_here

STATE=${SPAWNKIT_CI_STATE:-/tmp/spawnkit-ci}
DOCKER_SOCK=/var/run/docker.sock
PODMAN_SOCK=/run/podman/podman.sock
TEST_IMAGE=spawnkit-busybox:latest
PYTHON_IMAGE=spawnkit-python:latest
READY_TIMEOUT=${SPAWNKIT_CI_READY_TIMEOUT:-60}
mkdir -p "$STATE"

say() { echo "engines: $*" >&2; }

# -- packages --------------------------------------------------------------------------------
# tini: a static init with process-group forwarding, for Podman containers too (docker.io brings it).
packages=(docker.io podman runc conmon tini busybox-static debootstrap iptables uidmap curl
          ca-certificates)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
    say "packages present"
fi

# -- Podman's configuration for this machine -------------------------------------------------
CONF="$STATE/containers.conf"
cat >"$CONF" <<'EOF'
# Written by .ci/engines.sh: crun fails on this cgroup v1 host; runc works with low ulimits.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
EOF

# Answers when the engine's API answers, not merely when its socket file exists.
ping() { curl -sf --max-time 2 --unix-socket "$1" "http://d/$2" >/dev/null 2>&1; }

wait_ready() { # socket path, ping path, name, log
    local deadline=$((SECONDS + READY_TIMEOUT))
    until ping "$1" "$2"; do
        if ((SECONDS >= deadline)); then
            say "$3 not ready after ${READY_TIMEOUT}s; last lines of $4:"
            tail -n 20 "$4" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    say "$3 ready"
}

# The daemons keep the folder they start in as their working folder, and hand it on: Podman's
# conmon writes an `oom` marker file there after a memory kill. Not in the checkout, then.
cd "$STATE"

# -- Docker ----------------------------------------------------------------------------------
# A machine handed back from an earlier run may have a dockerd whose bridge was deleted
# under it: it answers, but no container on the default network can start. Restart it.
if ping "$DOCKER_SOCK" _ping && [ ! -e /sys/class/net/docker0 ] && [ -f /var/run/docker.pid ]; then
    say "dockerd answers but its bridge docker0 is gone: restarting it"
    kill "$(cat /var/run/docker.pid)" 2>/dev/null || true
    deadline=$((SECONDS + 30))
    while ping "$DOCKER_SOCK" _ping && ((SECONDS < deadline)); do sleep 0.2; done
    sleep 1 # its pid file and containerd go just after the socket
fi
if ping "$DOCKER_SOCK" _ping; then
    say "dockerd already running"
else
    log=/var/log/spawnkit-dockerd.log
    say "starting dockerd (log: $log)"
    # A dockerd killed hard leaves its pid file; a new one refuses to start beside it.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    setsid dockerd >"$log" 2>&1 </dev/null &
    wait_ready "$DOCKER_SOCK" _ping dockerd "$log"
fi

# -- Podman API service ----------------------------------------------------------------------
if ping "$PODMAN_SOCK" _ping; then
    say "podman service already running"
else
    log=/var/log/spawnkit-podman.log
    say "starting the podman API service (log: $log)"
    mkdir -p "$(dirname "$PODMAN_SOCK")"
    rm -f "$PODMAN_SOCK"
    # CONTAINER_HOST would make `podman` a remote client of the very service it should start.
    env -u CONTAINER_HOST CONTAINERS_CONF="$CONF" \
        setsid podman system service --time=0 "unix://$PODMAN_SOCK" >"$log" 2>&1 </dev/null &
    wait_ready "$PODMAN_SOCK" _ping "podman service" "$log"
fi

# -- the test image, on both engines ---------------------------------------------------------
ctx="$STATE/busybox-context"
mkdir -p "$ctx"
cp "$here/images/busybox/Containerfile" "$ctx/Containerfile"
sh "$here/images/busybox/mkrootfs.sh" "$ctx/rootfs.tar"
say "building $TEST_IMAGE on docker"
DOCKER_HOST="unix://$DOCKER_SOCK" docker build -q -t "$TEST_IMAGE" -f "$ctx/Containerfile" "$ctx" >&2
say "building $TEST_IMAGE on podman"
env -u CONTAINER_HOST CONTAINERS_CONF="$CONF" \
    podman build -q -t "$TEST_IMAGE" -f "$ctx/Containerfile" "$ctx" >&2

# -- the Python image (python3 and pytest), on both engines -----------------------------------
# debootstrap from Debian's mirror takes about a minute; its root filesystem is kept in a
# cache outside the checkout, by the recipe's hash, so a machine builds it once.
cache=${SPAWNKIT_IMAGE_CACHE:-/var/cache/spawnkit/images}
key=$(cat "$here/images/python/mkrootfs.sh" "$here/images/python/Containerfile" | sha256sum | cut -c1-12)
pyctx="$STATE/python-context"
mkdir -p "$cache" "$pyctx"
if [ ! -f "$cache/python-rootfs-$key.tar" ]; then
    say "making the Python image's root filesystem (debootstrap, about a minute)"
    rm -f "$cache"/python-rootfs-*.tar
    sh "$here/images/python/mkrootfs.sh" "$cache/python-rootfs-$key.tar" 2>"$STATE/python-rootfs.log" \
        || { tail -n 20 "$STATE/python-rootfs.log" >&2; exit 1; }
fi
cp "$here/images/python/Containerfile" "$pyctx/Containerfile"
ln -f "$cache/python-rootfs-$key.tar" "$pyctx/rootfs.tar" 2>/dev/null \
    || cp "$cache/python-rootfs-$key.tar" "$pyctx/rootfs.tar"
say "building $PYTHON_IMAGE on docker"
DOCKER_HOST="unix://$DOCKER_SOCK" docker build -q -t "$PYTHON_IMAGE" -f "$pyctx/Containerfile" "$pyctx" >&2
say "building $PYTHON_IMAGE on podman"
env -u CONTAINER_HOST CONTAINERS_CONF="$CONF" \
    podman build -q -t "$PYTHON_IMAGE" -f "$pyctx/Containerfile" "$pyctx" >&2

cat >"$STATE/engines.env" <<EOF
export CONTAINERS_CONF=$CONF
export CONTAINER_HOST=unix://$PODMAN_SOCK
export DOCKER_HOST=unix://$DOCKER_SOCK
export SPAWNKIT_TEST_IMAGE=$TEST_IMAGE
export SPAWNKIT_PYTHON_IMAGE=$PYTHON_IMAGE
EOF
}

# A subshell: sourced, the set-up leaves no function, variable or shell option behind. (Not
# in an `||` list: bash would ignore `set -e` inside it.)
( _spawnkit_engines )
_spawnkit_engines_rc=$?
unset -f _spawnkit_engines
unset _spawnkit_engines_here
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    if ((_spawnkit_engines_rc == 0)); then
        # shellcheck source=/dev/null
        source "${SPAWNKIT_CI_STATE:-/tmp/spawnkit-ci}/engines.env"
    fi
    return "$_spawnkit_engines_rc"
fi
((_spawnkit_engines_rc == 0)) || exit "$_spawnkit_engines_rc"
cat "${SPAWNKIT_CI_STATE:-/tmp/spawnkit-ci}/engines.env"
