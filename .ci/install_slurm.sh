#!/usr/bin/env bash
# Install the Debian packages a single-node test SLURM needs (slurmctld, slurmd,
# slurm-client, munge). Idempotent: does nothing when the daemons are already present.
#
# Never fails the CI run: when it cannot install (not root, no apt-get, apt error),
# it says why and exits 0; tests/test_slurm.py then skips with the reason given by
# tests/slurm_cluster.py:skip_reason().
set -u

have_all() {
    local binary
    for binary in slurmctld slurmd sbatch squeue scontrol sinfo munged mungekey munge; do
        command -v "$binary" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$binary" >/dev/null 2>&1 || return 1
    done
}

if have_all; then
    echo "install_slurm: slurmctld, slurmd, slurm-client and munge already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_slurm: not root; cannot install slurm/munge (the slurm test will be skipped)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_slurm: apt-get not found; cannot install slurm/munge (the slurm test will be skipped)"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Hard timeouts: a stalled mirror must not hang CI.
if ! timeout 300 apt-get update -q; then
    echo "install_slurm: apt-get update failed (the slurm test will be skipped)"
    exit 0
fi
if ! timeout 600 apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge; then
    echo "install_slurm: apt-get install failed (the slurm test will be skipped)"
    exit 0
fi
# Debian's postinst may start system-wide daemons; the test runs its own private
# cluster and needs ports 6817/6818 and no foreign munged, so stop them if running.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl stop slurmctld slurmd munge >/dev/null 2>&1 || true
    systemctl disable slurmctld slurmd munge >/dev/null 2>&1 || true
fi

if have_all; then
    echo "install_slurm: installed slurmctld, slurmd, slurm-client and munge"
else
    echo "install_slurm: packages installed but some binaries are still missing (the slurm test will be skipped)"
fi
exit 0
