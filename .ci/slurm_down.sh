#!/usr/bin/env bash
# Tear down the single-node SLURM started by .ci/slurm_up.sh (same SLURM_SCRATCH).
# Cancels its leftover jobs, stops slurmd, slurmctld and munged by their pid files, and removes
# /etc/slurm/slurm.conf only when it is the symlink into this state dir. Safe to run twice or
# when nothing is up. `--purge` also deletes the state dir (key, job state, logs).
set -uo pipefail

D=${SLURM_SCRATCH:-/var/tmp/vlprep-slurm}
ETC_CONF=/etc/slurm/slurm.conf
export PATH="$PATH:/usr/sbin:/sbin"
PURGE=0
[ "${1:-}" = "--purge" ] && PURGE=1

if [ ! -d "$D" ]; then
    echo "slurm_down.sh: no state dir $D; nothing to stop"
    exit 0
fi
D=$(cd "$D" && pwd -P)

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {  # stop PIDFILE NAME: SIGTERM, wait up to 10 s, then SIGKILL
    local f=$1 name=$2 pid
    alive "$f" || { rm -f "$f"; return 0; }
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm_down.sh: $name (pid $pid) ignored SIGTERM; killing it" >&2
        kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$f"
    echo "slurm_down.sh: stopped $name (pid $pid)"
}

# Jobs still queued or running on this test cluster (never anyone else's: explicit config).
if alive "$D/slurmctld.pid" && [ -f "$D/slurm.conf" ]; then
    jobs=$(SLURM_CONF=$D/slurm.conf squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        echo "slurm_down.sh: cancelling leftover jobs: $jobs"
        # shellcheck disable=SC2086
        SLURM_CONF=$D/slurm.conf scancel $jobs 2>/dev/null
        sleep 1
    fi
fi

stop "$D/slurmd.pid" slurmd
stop "$D/slurmctld.pid" slurmctld
stop "$D/munge/munged.pid" munged

if [ -L "$ETC_CONF" ]; then
    case "$(readlink "$ETC_CONF")" in
        "$D"/*) rm -f "$ETC_CONF" && echo "slurm_down.sh: removed $ETC_CONF" ;;
        *) echo "slurm_down.sh: left $ETC_CONF alone (points to $(readlink "$ETC_CONF"))" ;;
    esac
fi

if [ "$PURGE" = 1 ]; then
    rm -rf "$D" && echo "slurm_down.sh: removed $D"
fi
exit 0
