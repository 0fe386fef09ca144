#!/usr/bin/env bash
# Installs and starts a single-node Slurm (Debian's slurm-wlm 22.05 and munge) on a fresh
# Debian 12 machine without systemd, so that sbatch, squeue, scontrol and scancel work as root.
# Safe to run again: what is installed is not reinstalled, a daemon that answers is not
# restarted, one that does not (or runs with an older configuration) is restarted.
#
# Usage:  source .ci/slurm.sh          (exports the variables below into the caller)
#     or  eval "$(bash .ci/slurm.sh)"   (stdout carries only the `export` lines)
# Exports SLURM_CONF and SPAWNKIT_SLURM=1, also kept in $SPAWNKIT_CI_STATE/slurm.env (default
# /tmp/spawnkit-ci). Progress goes to stderr.
#
# Everything lives in $SPAWNKIT_CI_STATE/slurm: configuration (written anew each run, so a
# changed hostname or memory size is picked up), munge key and socket, logs, pid files, the
# controller's state (which holds each job's environment, secrets included, until the job is
# purged) and slurmd's spool. /etc/slurm/slurm.conf is made a link to it (when it does not exist
# or is already such a link) so that a shell without SLURM_CONF works too.
# No accounting (slurmdbd/MariaDB): sacct does not work; finished jobs stay visible to
# `scontrol show job` for MinJobAge (1 h), and each ending is appended to log/jobcomp.txt.
_spawnkit_slurm() {
set -euo pipefail

STATE=${SPAWNKIT_CI_STATE:-/tmp/spawnkit-ci}
S="$STATE/slurm"
READY_TIMEOUT=${SPAWNKIT_CI_READY_TIMEOUT:-60}
PARTITION=spawnkit
# Job IDs above any PID Linux gives (at most 4194304): a job ID taken for a PID by mistake
# (a kill, a look in /proc) finds no process, never someone else's. Real clusters' IDs run in
# the millions too.
FIRST_JOB_ID=5000000
SLOTS_PER_CORE=4 # OverSubscribe=FORCE:4: 4 one-cpu jobs share a core
mkdir -p "$S"/etc "$S"/log "$S"/run "$S"/ctld "$S"/spool "$S"/munge
chmod 755 "$S/munge" # the socket is for every user; the key file is 0600

say() { echo "slurm: $*" >&2; }

logs_tail() {
    local f
    for f in "$S"/log/*.log "$S"/log/*.out; do
        [ -s "$f" ] || continue
        say "last lines of $f:"
        tail -n 15 "$f" >&2 || true
    done
}

# -- packages --------------------------------------------------------------------------------
packages=(slurmctld slurmd slurm-client munge)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The packages' init scripts would start munged and the Slurm daemons outside the state
    # folder: a policy-rc.d (where the machine has none) stops that during the install.
    policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
    fi
    rc=0
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >"$S/log/apt.log" 2>&1 || rc=$?
    [ -z "$policy" ] || rm -f "$policy"
    if ((rc)); then
        tail -n 20 "$S/log/apt.log" >&2
        exit 1
    fi
else
    say "packages present"
fi

# -- configuration ---------------------------------------------------------------------------
export SLURM_CONF="$S/etc/slurm.conf"
MUNGE_SOCK="$S/munge/munge.socket"
NODE=$(hostname -s)
CPUS=$(nproc)
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[ -n "$MEM" ] || { say "slurmd -C printed no RealMemory"; exit 1; }
# Memory is never oversubscribed: without --mem a job gets DefMemPerCPU per cpu, so that every
# slot (CPUS x SLOTS_PER_CORE one-cpu jobs) fits at once.
DEFMEM=$((MEM / (CPUS * SLOTS_PER_CORE)))

new_conf() {
cat <<EOF
# Written by .ci/slurm.sh: single-node Slurm for spawnkit's tests. Do not edit: rewritten each run.
ClusterName=spawnkit
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCK
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=$S/ctld
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEFMEM
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MinJobAge=3600
FirstJobId=$FIRST_JOB_ID
KillWait=5
InactiveLimit=0
Waittime=0
ReturnToService=2
SlurmdTimeout=60
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$S/log/jobcomp.txt
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:$SLOTS_PER_CORE
EOF
}
new_cgroup_conf() {
cat <<'EOF'
# Written by .ci/slurm.sh. cgroup v1 on these machines; --mem is enforced, a memory kill is
# reported as OUT_OF_MEMORY.
CgroupAutomount=yes
ConstrainCores=no
ConstrainDevices=no
ConstrainRAMSpace=yes
ConstrainSwapSpace=no
EOF
}
# A configuration that changed (another hostname, memory size) makes running daemons stale.
conf_changed=0
new_conf >"$S/etc/slurm.conf.new"
new_cgroup_conf >"$S/etc/cgroup.conf.new"
for f in slurm.conf cgroup.conf; do
    if ! cmp -s "$S/etc/$f.new" "$S/etc/$f"; then
        mv -f "$S/etc/$f.new" "$S/etc/$f"
        conf_changed=1
    else
        rm -f "$S/etc/$f.new"
    fi
done
if [ ! -e /etc/slurm/slurm.conf ] || [ -L /etc/slurm/slurm.conf ]; then
    mkdir -p /etc/slurm
    ln -sfn "$S/etc/slurm.conf" /etc/slurm/slurm.conf
fi

# The daemons keep the folder they start in as their working folder: not the checkout.
cd "$S"

# Alive, and not a zombie: PID 1 on these machines does not reap the orphans it inherits.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ "$stat" != Z* && "$stat" != X* ]]
}
# pid from a pid file, if that process is alive.
live_pid() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" && echo "$pid"
}
stop_pidfile() { # pid file, name
    local pid deadline
    pid=$(live_pid "$1") || return 0
    say "stopping $2 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while alive "$pid"; do
        if ((SECONDS >= deadline + 10)); then say "$2 (pid $pid) does not die"; exit 1; fi
        if ((SECONDS >= deadline)); then kill -9 "$pid" 2>/dev/null || true; fi
        sleep 0.1
    done
    rm -f "$1"
}
wait_until() { # name, command...
    local name=$1 deadline=$((SECONDS + READY_TIMEOUT))
    shift
    until "$@"; do
        if ((SECONDS >= deadline)); then
            say "$name not ready after ${READY_TIMEOUT}s"
            logs_tail
            exit 1
        fi
        sleep 0.1
    done
}

started=0

# -- munge -----------------------------------------------------------------------------------
munge_ok() { munge -n -S "$MUNGE_SOCK" 2>/dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null 2>&1; }
if [ ! -s "$S/munge/munge.key" ]; then
    mungekey --create --keyfile="$S/munge/munge.key" >&2
    chmod 600 "$S/munge/munge.key"
fi
if munge_ok; then
    say "munged already running"
else
    stop_pidfile "$S/run/munged.pid" "stale munged"
    rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
    say "starting munged (log: $S/log/munged.out)"
    started=1
    setsid munged --foreground --force --socket="$MUNGE_SOCK" --key-file="$S/munge/munge.key" \
        --pid-file="$S/run/munged.pid" --log-file="$S/log/munged.log" \
        --seed-file="$S/munge/munged.seed" >"$S/log/munged.out" 2>&1 </dev/null &
    wait_until munged munge_ok
fi

# -- slurmctld -------------------------------------------------------------------------------
ctld_ok() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
if ((conf_changed == 0)) && ctld_ok; then
    say "slurmctld already running"
else
    ((conf_changed == 0)) || say "configuration changed"
    stop_pidfile "$S/run/slurmctld.pid" slurmctld
    say "starting slurmctld (log: $S/log/slurmctld.log)"
    # -i: a state file that cannot be read (a crash, another version) is skipped, not fatal.
    started=1
    setsid slurmctld -D -i >"$S/log/slurmctld.out" 2>&1 </dev/null &
    wait_until slurmctld ctld_ok
fi

# -- slurmd ----------------------------------------------------------------------------------
node_state() { scontrol -o show node "$NODE" 2>/dev/null | sed -n 's/.* State=\([^ ]*\).*/\1/p'; }
# slurmd answers when the controller sees the node respond (no `*` after its state).
slurmd_ok() {
    local st
    live_pid "$S/run/slurmd.pid" >/dev/null || return 1
    st=$(node_state)
    [ -n "$st" ] && [[ "$st" != *'*'* ]] && [[ "$st" != UNKNOWN* ]]
}
if ((conf_changed == 0)) && slurmd_ok; then
    say "slurmd already running"
else
    stop_pidfile "$S/run/slurmd.pid" slurmd
    say "starting slurmd (log: $S/log/slurmd.log)"
    started=1
    setsid slurmd -D >"$S/log/slurmd.out" 2>&1 </dev/null &
    wait_until slurmd slurmd_ok
fi

# A node left DOWN or DRAINED (by a test, or a slurmd that was killed) is put back in service.
case "$(node_state)" in
    DOWN* | DRAIN* | *+DRAIN* | FAIL*)
        say "node $NODE is $(node_state): resuming it"
        scontrol update NodeName="$NODE" State=RESUME >&2 || true
        ;;
esac
# shellcheck disable=SC2317 # called through wait_until
node_usable() { case "$(node_state)" in IDLE* | MIXED* | ALLOCATED*) return 0 ;; esac; return 1; }
wait_until "node $NODE" node_usable

# -- a trivial job runs ----------------------------------------------------------------------
# Skipped when every cpu is allocated (a re-run beside a test run, or a controller restarted
# under running jobs): the check job could wait long for a slot, and the node runs jobs.
if [[ "$(node_state)" == ALLOCATED* ]]; then
    say "every cpu is allocated (jobs run): no check job"
else
    # --export=ALL from a small environment: no login shell on the node (--export=NONE runs one).
    jobid=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SLURM_CONF="$SLURM_CONF" sbatch --parsable \
        --export=ALL --no-requeue --job-name=spawnkit-ci-check --output=/dev/null --time=1 --wrap true)
    jobid=${jobid%%;*}
    # shellcheck disable=SC2317 # called through wait_until
    job_done() {
        local st
        st=$(scontrol -o show job "$jobid" 2>/dev/null | sed -n 's/.* JobState=\([^ ]*\).*/\1/p')
        case "$st" in
            COMPLETED) return 0 ;;
            PENDING | CONFIGURING | RUNNING | COMPLETING | "") return 1 ;;
            *)
                say "check job $jobid ended $st"
                scontrol show job "$jobid" >&2 || true
                logs_tail
                exit 1
                ;;
        esac
    }
    wait_until "check job $jobid" job_done
fi
say "ready: node $NODE, $CPUS cpus x $SLOTS_PER_CORE slots, ${MEM} MB (${DEFMEM} MB per cpu by default)"

cat >"$STATE/slurm.env" <<EOF
export SLURM_CONF=$SLURM_CONF
export SPAWNKIT_SLURM=1
EOF
}

# A subshell: sourced, the set-up leaves no function, variable or shell option behind. (Not
# in an `||` list: bash would ignore `set -e` inside it.)
( _spawnkit_slurm )
_spawnkit_slurm_rc=$?
unset -f _spawnkit_slurm
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    if ((_spawnkit_slurm_rc == 0)); then
        # shellcheck source=/dev/null
        source "${SPAWNKIT_CI_STATE:-/tmp/spawnkit-ci}/slurm.env"
    fi
    # eval expands the code before unset runs: no variable is left behind either.
    eval "unset _spawnkit_slurm_rc; return $_spawnkit_slurm_rc"
fi
((_spawnkit_slurm_rc == 0)) || exit "$_spawnkit_slurm_rc"
cat "${SPAWNKIT_CI_STATE:-/tmp/spawnkit-ci}/slurm.env"
