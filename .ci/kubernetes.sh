#!/usr/bin/env bash
# Starts a one-node Kubernetes cluster (etcd, kube-apiserver, kubelet on a private containerd) on
# a fresh Debian 12 machine, for spawnkit's Kubernetes tests. Safe to run again: binaries built
# once per machine are reused, a daemon that answers is not restarted.
#
# Usage:  source .ci/kubernetes.sh          (exports the variables below into the caller)
#     or  eval "$(bash .ci/kubernetes.sh)"   (stdout carries only the `export` lines)
# Exports KUBECONFIG, SPAWNKIT_KUBERNETES=1, SPAWNKIT_KUBERNETES_NODE (the one node's name),
# SPAWNKIT_KUBECTL, SPAWNKIT_CONTAINERD_ADDRESS and SPAWNKIT_KUBERNETES_HOST_NETWORK=1 (no pod
# network here: spawnkit gives its Pods the node's), also kept in
# $SPAWNKIT_CI_STATE/kubernetes.env (default /tmp/spawnkit-ci). Progress goes to stderr.
#
# No Kubernetes server ships as a binary in the registries this machine reaches: kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet and kubectl are built offline from Debian's
# source package `kubernetes` (about 7 min on 2 cores) into $SPAWNKIT_K8S_CACHE (default
# /var/cache/spawnkit/kubernetes), once per machine. There is no container registry either: the
# pause image is built here from the same source, and the test image is copied from Docker
# (.ci/engines.sh makes it; this script runs that if needed). Pods need `imagePullPolicy:
# IfNotPresent` (or Never). There is no pod network: pods need `hostNetwork: true`.
_spawnkit_kubernetes_here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# shellcheck disable=SC2317 # the ready checks are called through ensure and wait_for
_spawnkit_kubernetes() {
set -euo pipefail
here=$_spawnkit_kubernetes_here

K8S_VERSION=1.20.2 # the upstream version inside Debian 12's source package
STATE=${SPAWNKIT_CI_STATE:-/tmp/spawnkit-ci}
ST=$STATE/kubernetes
CACHE=${SPAWNKIT_K8S_CACHE:-/var/cache/spawnkit/kubernetes}
BIN=$CACHE/$K8S_VERSION
BUILD=${SPAWNKIT_K8S_BUILD_DIR:-/tmp/spawnkit-k8s-build}
READY_TIMEOUT=${SPAWNKIT_CI_READY_TIMEOUT:-60}
# The API server reaches the kubelet (logs, exec) by the node's host name, on loopback: the
# kubelet listens on 127.0.0.1 only, and refuses 127.0.0.1 as its node IP.
NODE=$(hostname -s)
case "$(getent ahostsv4 "$NODE" 2>/dev/null | awk 'NR == 1 {print $1}')" in
127.*) ;;
*) NODE=localhost ;;
esac
TEST_IMAGE=spawnkit-busybox:latest
PAUSE_IMAGE=docker.io/spawnkit/pause:3.4
DOCKER_SOCK=/var/run/docker.sock
ETCD_URL=http://127.0.0.1:12379 # not etcd's default ports: a packaged etcd may hold those
API_PORT=6443
CTR_SOCK=$ST/containerd/containerd.sock
PKI=$ST/pki
ADMIN_KUBECONFIG=$ST/admin.kubeconfig
mkdir -p "$ST" "$PKI"

say() { echo "kubernetes: $*" >&2; }
# One run at a time. The lock's descriptor is closed for every daemon started below.
exec 9>"$ST/.lock"
flock 9

# -- packages --------------------------------------------------------------------------------
install_missing() {
    local p missing=()
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    say "installing ${missing[*]} (log: $ST/apt.log)"
    {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends "${missing[@]}"; }
    } >>"$ST/apt.log" 2>&1 </dev/null || {
        say "apt-get failed; last lines of $ST/apt.log:"
        tail -n 20 "$ST/apt.log" >&2
        exit 1
    }
}
install_missing etcd-server containerd runc containernetworking-plugins openssl curl util-linux

# -- the Kubernetes binaries and the pause program: built once per machine ---------------------
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl pause)
have_binaries() {
    local b
    for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
    [ -f "$BIN/VERSION" ]
}

build_binaries() {
    local log=$ST/build.log start=$SECONDS
    install_missing golang-go dpkg-dev make gcc libc6-dev rsync jq
    # `apt-get source` needs a deb-src entry; Debian's images ship none.
    apt-get update -qq >>"$ST/apt.log" 2>&1
    if [ -z "$(apt-cache showsrc kubernetes 2>/dev/null)" ]; then
        say "adding a deb-src entry for bookworm (/etc/apt/sources.list.d/spawnkit-deb-src.sources)"
        cat >/etc/apt/sources.list.d/spawnkit-deb-src.sources <<'EOF'
# Added by spawnkit's .ci/kubernetes.sh: it builds Kubernetes from Debian's source package.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        apt-get update -qq >>"$ST/apt.log" 2>&1
    fi
    local dver
    dver=$(apt-cache showsrc kubernetes | awk '/^Version:/ && !v {v = $2} END {print v}')
    case "$dver" in
    "$K8S_VERSION"-* | *really"$K8S_VERSION"-*) ;;
    *) say "Debian's source package kubernetes is '$dver', not $K8S_VERSION: update K8S_VERSION"; exit 1 ;;
    esac
    say "building Kubernetes $K8S_VERSION from Debian's source $dver (about 7 min; log: $log)"
    rm -rf "$BUILD"
    mkdir -p "$BUILD/home"
    (cd "$BUILD" && apt-get source -qq kubernetes) >"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 1; }
    local src
    src=$(find "$BUILD" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' -print -quit)
    # Offline: Debian's Go, the vendored modules, no proxy; static binaries as Debian builds them.
    (
        cd "$src"
        # (Kubernetes' make keeps its Go build cache in _output/, inside $BUILD too.)
        export GOPATH=$BUILD/gopath GOCACHE=$BUILD/gocache HOME=$BUILD/home GOPROXY=off \
            GOFLAGS=-mod=vendor CGO_ENABLED=0 GOTOOLCHAIN=local
        # The scheduler and controller-manager add under a minute to the servers' shared build.
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kubectl"
        # The sandbox ("pause") container's program, as upstream builds it.
        gcc -Os -Wall -Werror -static -DVERSION=v3.4-spawnkit -o _output/bin/pause build/pause/linux/pause.c
    ) >>"$log" 2>&1 </dev/null 9>&- &
    local pid=$! next=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= next)); then
            say "still building ($((SECONDS - start))s)"
            next=$((SECONDS + 60))
        fi
        sleep 2
    done
    if ! wait "$pid"; then
        say "build failed after $((SECONDS - start))s; last lines of $log:"
        tail -n 30 "$log" >&2
        exit 1
    fi
    rm -rf "$BIN.tmp"
    mkdir -p "$BIN.tmp"
    local b
    for b in "${BINARIES[@]}"; do cp "$src/_output/bin/$b" "$BIN.tmp/$b"; done
    echo "kubernetes $K8S_VERSION from Debian source package $dver, built $(date -u +%FT%TZ)" >"$BIN.tmp/VERSION"
    rm -rf "$BIN"
    mv "$BIN.tmp" "$BIN"
    rm -rf "$BUILD" # source tree and Go caches: several GB
    say "built in $((SECONDS - start))s into $BIN"
}

if have_binaries; then
    say "binaries present in $BIN"
else
    build_binaries
fi
kubectl() { "$BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

# -- certificates, keys, tokens, kubeconfigs (once per state folder) ---------------------------
if [ ! -f "$PKI/apiserver.crt" ]; then
    say "generating the CA, the API server's certificate and the service-account key in $PKI"
    (
        cd "$PKI"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
            -subj "/CN=spawnkit-ci-ca" -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
            -subj "/CN=kube-apiserver"
        cat >apiserver.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
authorityKeyIdentifier=keyid
EOF
        openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
            -out apiserver.crt.tmp -days 3650 -extfile apiserver.ext
        openssl genrsa -out sa.key 2048
        openssl rsa -in sa.key -pubout -out sa.pub
        # Static bearer tokens: token,user,uid,"groups"
        echo "$(openssl rand -hex 24),admin,admin,\"system:masters\"" >tokens.csv
        echo "$(openssl rand -hex 24),kubelet,kubelet,\"system:nodes\"" >>tokens.csv
        chmod 600 ./*.key tokens.csv
        mv apiserver.crt.tmp apiserver.crt
    ) >"$ST/pki.log" 2>&1 || { tail -n 20 "$ST/pki.log" >&2; exit 1; }
fi
kubeconfig() { # file user token: replaced whole, as a reader may be reading it
    cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: spawnkit-ci
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: spawnkit-ci
  context: {cluster: spawnkit-ci, user: $2, namespace: default}
current-context: spawnkit-ci
EOF
    chmod 600 "$1.tmp"
    mv "$1.tmp" "$1"
}
ADMIN_TOKEN=$(awk -F, '$2 == "admin" {print $1}' "$PKI/tokens.csv")
kubeconfig "$ADMIN_KUBECONFIG" admin "$ADMIN_TOKEN"
kubeconfig "$ST/kubelet.kubeconfig" kubelet \
    "$(awk -F, '$3 == "kubelet" {print $1}' "$PKI/tokens.csv")"

# -- daemons ------------------------------------------------------------------------------------
# They keep the folder they start in as their working folder: the state folder, not the checkout.
cd "$ST"

wait_for() { # name, timeout, log, command...: until the command succeeds
    local name=$1 timeout=$2 log=$3
    shift 3
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            say "$name not ready after ${timeout}s; last lines of $log:"
            tail -n 25 "$log" >&2 || true
            exit 1
        fi
        sleep 0.3
    done
    say "$name ready"
}

# The process an earlier run started, if it is still alive: its pid file says which.
alive_pid() { # name
    local pid
    pid=$(cat "$ST/$1.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" == *"$1"* ]] && echo "$pid"
}

stop() { # name, why: TERM, then KILL after 20 s
    local pid i
    pid=$(alive_pid "$1") || return 0
    say "stopping $1 (pid $pid): $2"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [ -d "/proc/$pid" ] || return 0
        sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null || true
    while [ -d "/proc/$pid" ]; do sleep 0.1; done
}

started=() # what this run started
ensure() { # name, ready-check, command...: start it unless it answers, then wait till it does
    local name=$1 check=$2
    shift 2
    if "$check" >/dev/null 2>&1; then
        say "$name already running"
        return
    fi
    # Alive but not answering: hung, or still shutting down. A second one beside it would fail
    # on its ports or files (containerd's even waits forever for its database).
    stop "$name" "it does not answer"
    if [ "$name" = containerd ]; then
        rm -f "$CTR_SOCK" "$CTR_SOCK.ttrpc" # a dead one's: a new one would not start beside them
    fi
    say "starting $name (log: $ST/$name.log)"
    setsid "$@" >>"$ST/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$ST/$name.pid"
    started+=("$name")
    wait_for "$name" "$READY_TIMEOUT" "$ST/$name.log" "$check"
}

# Ready checks. (No `| grep -q`: with pipefail, a writer cut off by grep's early exit fails.)
answers() { # expected, command...: the command prints exactly the expected text
    local expected=$1 out
    shift
    out=$("$@" 2>/dev/null) && [ "$out" = "$expected" ]
}
etcd_ok() { answers '{"health":"true"}' curl -sf --max-time 2 "$ETCD_URL/health"; }
api_ok() {
    answers ok curl -sf --max-time 2 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
        "https://127.0.0.1:$API_PORT/readyz"
}
cm_ok() { answers ok curl -skf --max-time 2 https://127.0.0.1:10257/healthz; }
sched_ok() { answers ok curl -skf --max-time 2 https://127.0.0.1:10259/healthz; }
containerd_ok() {
    local out
    [ -S "$CTR_SOCK" ] &&
        out=$(ctr --address "$CTR_SOCK" --connect-timeout 2s --timeout 2s version 2>/dev/null) &&
        [[ "$out" == *Server:* ]]
}
kubelet_ok() { answers ok curl -sf --max-time 2 http://127.0.0.1:10248/healthz; }
node_ready() {
    answers True kubectl get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'
}
default_sa_ok() { [ -n "$(kubectl get serviceaccount default -o 'jsonpath={.secrets[0].name}')" ]; }

ensure etcd etcd_ok etcd --name spawnkit-ci --data-dir "$ST/etcd" \
    --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
    --initial-cluster spawnkit-ci=http://127.0.0.1:12380 --listen-metrics-urls ''

# Every user may do anything (AlwaysAllow); the admin's credential is a token.
ensure kube-apiserver api_ok "$BIN/kube-apiserver" \
    --etcd-servers="$ETCD_URL" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" --anonymous-auth=false \
    --authorization-mode=AlwaysAllow \
    --service-cluster-ip-range=10.96.0.0/16 \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc \
    --kubelet-preferred-address-types=Hostname --endpoint-reconciler-type=none \
    --allow-privileged=true --profiling=false --v=1

# The controller-manager makes each namespace's `default` ServiceAccount and its token (the
# ServiceAccount admission plugin refuses pods until then), deletes namespaces and collects
# garbage. The scheduler binds pods that do not set spec.nodeName; a pod that does not fit stays
# Pending instead of failing on the kubelet (OutOfcpu/OutOfmemory). After the API server was
# restarted, a scheduler that kept running was seen to bind nothing for 1-2 minutes: restart both.
if [[ " ${started[*]} " == *" kube-apiserver "* ]]; then
    stop kube-controller-manager "the API server was restarted"
    stop kube-scheduler "the API server was restarted"
fi
ensure kube-controller-manager cm_ok "$BIN/kube-controller-manager" \
    --kubeconfig="$ADMIN_KUBECONFIG" \
    --bind-address=127.0.0.1 --secure-port=10257 --port=0 --leader-elect=false \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --profiling=false --v=1
ensure kube-scheduler sched_ok "$BIN/kube-scheduler" --kubeconfig="$ADMIN_KUBECONFIG" \
    --bind-address=127.0.0.1 --secure-port=10259 --port=0 --leader-elect=false \
    --profiling=false --v=1

# A private containerd: own root, state, socket and config; Docker's containerd is untouched.
mkdir -p "$ST/containerd" "$ST/cni/net.d"
# A loopback-only CNI network: the runtime then reports its network ready (else the node is
# never Ready). It gives no pod an address: a pod without `hostNetwork: true` never starts
# (FailedCreatePodSandBox events, the pod stays Pending).
cat >"$ST/cni/net.d/10-loopback.conflist" <<'EOF'
{"cniVersion": "0.4.0", "name": "spawnkit-loopback", "plugins": [{"type": "loopback"}]}
EOF
cat >"$ST/containerd/config.toml" <<EOF
# Written by .ci/kubernetes.sh
version = 2
root = "$ST/containerd/root"
state = "$ST/containerd/state"
oom_score = 0
[grpc]
  address = "$CTR_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$ST/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # No CAP_SYS_RESOURCE here: the kubelet's oom_score_adj values below ours cannot be set.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ST/cni/net.d"
EOF
ensure containerd containerd_ok containerd --config "$ST/containerd/config.toml"

# -- images: no registry, so copied from Docker into the private containerd -------------------
if ! DOCKER_HOST="unix://$DOCKER_SOCK" docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
    say "$TEST_IMAGE is not on Docker: running .ci/engines.sh"
    bash "$here/.ci/engines.sh" >/dev/null 9>&-
fi
ctx=$ST/pause-context
mkdir -p "$ctx"
cp "$BIN/pause" "$ctx/pause"
printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
DOCKER_HOST="unix://$DOCKER_SOCK" docker build -q -t "$PAUSE_IMAGE" "$ctx" >"$ctx.log" 2>&1 || {
    cat "$ctx.log" >&2
    exit 1
}
for image in "$PAUSE_IMAGE" "$TEST_IMAGE"; do
    DOCKER_HOST="unix://$DOCKER_SOCK" docker save "$image" |
        ctr --address "$CTR_SOCK" -n k8s.io images import --snapshotter overlayfs - >/dev/null
done
say "images imported into containerd (namespace k8s.io): $PAUSE_IMAGE, $TEST_IMAGE"

# -- kubelet ------------------------------------------------------------------------------------
cat >"$ST/kubelet.yaml" <<EOF
# Written by .ci/kubernetes.sh
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
failSwapOn: false
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
# Images cannot be pulled back: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
makeIPTablesUtilChains: false
serializeImagePulls: false
maxPods: 250
# The default 5 requests/s to the API server makes pod status lag (100 short pods: 80 s).
kubeAPIQPS: 50
kubeAPIBurst: 100
eventRecordQPS: 20
# Node status is computed every 2 s (posted only when it changes, else every minute): the node
# is Ready about 1 s after the kubelet starts instead of 10 s.
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 1m
EOF
ensure kubelet kubelet_ok "$BIN/kubelet" --config="$ST/kubelet.yaml" \
    --kubeconfig="$ST/kubelet.kubeconfig" \
    --container-runtime=remote --container-runtime-endpoint="unix://$CTR_SOCK" \
    --hostname-override="$NODE" \
    --root-dir="$ST/kubelet" --cert-dir="$ST/kubelet/pki" \
    --volume-plugin-dir="$ST/kubelet/volume-plugins" \
    --pod-infra-container-image="$PAUSE_IMAGE" --v=1
wait_for "node $NODE" "$READY_TIMEOUT" "$ST/kubelet.log" node_ready
wait_for "default ServiceAccount token" "$READY_TIMEOUT" "$ST/kube-controller-manager.log" default_sa_ok

# -- a pod is scheduled, runs to its end, and its exit code and output are read back -------------
smoke=spawnkit-smoke
kubectl delete pod "$smoke" --ignore-not-found --grace-period=0 --force >/dev/null 2>&1 || true
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $smoke, labels: {app: spawnkit-smoke}}
spec:
  hostNetwork: true
  restartPolicy: Never
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $TEST_IMAGE
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo spawnkit-smoke; exit 7']
EOF
smoke_done() {
    local phase
    phase=$(kubectl get pod "$smoke" -o 'jsonpath={.status.phase}')
    [ "$phase" = Succeeded ] || [ "$phase" = Failed ]
}
if ! (wait_for "test pod" "$READY_TIMEOUT" "$ST/kubelet.log" smoke_done); then
    kubectl describe pod "$smoke" >&2 || true
    exit 1
fi
code=$(kubectl get pod "$smoke" -o 'jsonpath={.status.containerStatuses[0].state.terminated.exitCode}')
out=$(kubectl logs "$smoke" 2>&1 || true)
if [ "$code" != 7 ] || [ "$out" != spawnkit-smoke ]; then
    say "test pod: exit code '$code' (expected 7), output '$out'; last lines of $ST/kubelet.log:"
    tail -n 25 "$ST/kubelet.log" >&2
    exit 1
fi
kubectl delete pod "$smoke" --wait=true >/dev/null
say "test pod ran: exit code 7 read back"

cat >"$STATE/kubernetes.env" <<EOF
export KUBECONFIG=$ADMIN_KUBECONFIG
export SPAWNKIT_KUBERNETES=1
export SPAWNKIT_KUBERNETES_NODE=$NODE
export SPAWNKIT_KUBERNETES_HOST_NETWORK=1
export SPAWNKIT_KUBECTL=$BIN/kubectl
export SPAWNKIT_CONTAINERD_ADDRESS=$CTR_SOCK
EOF
}

# A subshell: sourced, the set-up leaves no function, variable or shell option behind. (Not
# in an `||` list: bash would ignore `set -e` inside it.)
( _spawnkit_kubernetes )
_spawnkit_kubernetes_rc=$?
unset -f _spawnkit_kubernetes
unset _spawnkit_kubernetes_here
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    if ((_spawnkit_kubernetes_rc == 0)); then
        # shellcheck source=/dev/null
        source "${SPAWNKIT_CI_STATE:-/tmp/spawnkit-ci}/kubernetes.env"
    fi
    return "$_spawnkit_kubernetes_rc"
fi
((_spawnkit_kubernetes_rc == 0)) || exit "$_spawnkit_kubernetes_rc"
cat "${SPAWNKIT_CI_STATE:-/tmp/spawnkit-ci}/kubernetes.env"
