#!/usr/bin/env bash
# Install a single-node SLURM's packages (Debian/Ubuntu) for the SLURM tests; root only.
# A no-op (exit 0) when slurmctld is already installed. Quiet unless something fails.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)

if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
    && command -v sinfo >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_slurm.sh: must run as root to install ${PACKAGES[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# `apt-get update` only when the package lists are missing (fresh containers ship without them).
if ! apt-cache policy slurmctld 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
fi
# policy-rc.d / no systemd: nothing auto-starts; slurm_up.sh starts the daemons itself.
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"$log" 2>&1 \
    || { echo "install_slurm.sh: apt-get install failed:" >&2; cat "$log" >&2; exit 1; }
command -v slurmctld >/dev/null || { echo "install_slurm.sh: slurmctld still missing" >&2; exit 1; }
