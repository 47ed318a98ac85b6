#!/usr/bin/env bash
# A one-node SLURM cluster for CI (Debian 12 / Ubuntu; root or passwordless sudo).
#
#   .ci/local-slurm.sh start   install slurmctld/slurmd/munge from apt if missing, write
#                              /etc/slurm/slurm.conf (+ gres.conf with fake GPUs), start the
#                              daemons, wait until the node is idle
#   .ci/local-slurm.sh stop    stop the daemons this script started (by the PIDs it recorded)
#
# Env: SLURM_CI_DIR (state, logs, PID files; default /tmp/slurm-ci), SLURM_CI_GPUS (fake GPUs,
#      default 2), SLURM_CI_TIMEOUT (seconds to wait for an idle node, default 30).
# Exit status 77: SLURM cannot run here (no root or sudo, apt failed, a SLURM not started by
# this script is running, the node never became idle); the reason is the last line on stderr.
#
# Traps (see README, "Running on a SLURM cluster"):
# - slurm.conf must be at the compiled-in path /etc/slurm/slurm.conf: the slurm-jobstep plugin
#   drops SLURM_CONF before its inner srun.
# - There is no slurmdbd, so `sacct` fails; the CI profile polls with squeue, which needs
#   MinJobAge >= 3 x its slurm-init-seconds-before-status-checks.
set -euo pipefail
D=${SLURM_CI_DIR:-/tmp/slurm-ci}
GPUS=${SLURM_CI_GPUS:-2}
WAIT=${SLURM_CI_TIMEOUT:-30}

MARK="# written by .ci/local-slurm.sh (one-node CI cluster)"

skip() { echo "local-slurm: $*" >&2; exit 77; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null || skip "needs root or passwordless sudo"
  SUDO="sudo -n"
fi

running() { [ -s "$1" ] && $SUDO kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
      || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || skip "SLURM is not installed and there is no apt-get"
    $SUDO apt-get update -qq >/dev/null 2>&1 || skip "apt-get update failed"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      slurmctld slurmd slurm-client munge >/dev/null 2>&1 || skip "apt-get install slurm failed"
    # apt starts the stock units on systemd hosts (GitHub runners); this cluster replaces them
    if [ -d /run/systemd/system ]; then $SUDO systemctl stop slurmd slurmctld 2>/dev/null || true; fi
  fi
  $SUDO mkdir -p "$D"/state/ctld "$D"/state/d "$D"/log "$D"/run /etc/slurm /run/munge
  if running "$D/run/slurmctld.pid"; then
    echo "local-slurm: already running (PID files in $D/run)" >&2
  elif pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
    skip "a SLURM this script did not start is running here; not touching it"
  fi

  # munge: the stock key, and a munged of ours when none answers
  [ -s /etc/munge/munge.key ] || $SUDO mungekey --create --force 2>/dev/null \
    || $SUDO sh -c 'dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null'
  $SUDO chown munge:munge /etc/munge/munge.key /run/munge
  $SUDO chmod 400 /etc/munge/munge.key
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [ -z "$SUDO" ]; then runuser -u munge -- /usr/sbin/munged; else sudo -n -u munge /usr/sbin/munged; fi
    $SUDO cp /run/munge/munged.pid "$D/run/munged.pid"
  fi

  host=$(hostname -s)
  hw=$(slurmd -C | head -1 | tr ' ' '\n' \
    | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
  mem=$(slurmd -C | head -1 | tr ' ' '\n' | sed -n 's/^RealMemory=//p')
  mem=$((mem * 9 / 10))  # below the measured value, or slurmd drains the node ("Low RealMemory")

  gres_types="" gres_node=""
  if [ "$GPUS" -gt 0 ]; then
    # fake GPUs: one distinct character device each (clones of /dev/null); slurmd rejects
    # regular files and duplicate names
    gres_types="GresTypes=gpu" gres_node="Gres=gpu:fake:$GPUS"
    $SUDO mkdir -p "$D/fakegpu"
    echo "$MARK" | $SUDO tee /etc/slurm/gres.conf >/dev/null
    for i in $(seq 0 $((GPUS - 1))); do
      [ -c "$D/fakegpu/gpu$i" ] || $SUDO mknod "$D/fakegpu/gpu$i" c 1 3
      echo "NodeName=$host Name=gpu Type=fake File=$D/fakegpu/gpu$i" \
        | $SUDO tee -a /etc/slurm/gres.conf >/dev/null
    done
  fi

  $SUDO tee /etc/slurm/slurm.conf >/dev/null <<EOF
$MARK
ClusterName=ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$D/state/ctld
SlurmdSpoolDir=$D/state/d
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
$gres_types
NodeName=$host NodeAddr=127.0.0.1 $hw RealMemory=$mem $gres_node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

  if ! running "$D/run/slurmctld.pid"; then
    $SUDO /usr/sbin/slurmctld || { $SUDO tail -20 "$D/log/slurmctld.log" >&2; skip "slurmctld did not start"; }
  fi
  if ! running "$D/run/slurmd.pid"; then
    $SUDO /usr/sbin/slurmd || { $SUDO tail -20 "$D/log/slurmd.log" >&2; skip "slurmd did not start"; }
  fi
  for _ in $(seq $((WAIT * 2))); do
    timeout 5 sinfo -h -o %T 2>/dev/null | grep -qx idle && break
    sleep 0.5
  done
  if ! timeout 5 sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    timeout 5 sinfo -R >&2 || true
    $SUDO tail -n 20 "$D"/log/*.log >&2 || true
    skip "the node did not become idle within ${WAIT}s"
  fi
  timeout 5 sinfo -o '%P %a %D %T %c %m %G'
}

stop_pid() {  # SIGTERM, then SIGKILL after 10 s (slurmd sometimes lingers while shutting down)
  local pid=$1
  $SUDO kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 20); do
    $SUDO kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  $SUDO kill -9 "$pid" 2>/dev/null || true
}

stop() {  # only what start recorded: slurmd, slurmctld, and munged when start launched it
  for name in slurmd slurmctld munged; do
    if [ -s "$D/run/$name.pid" ]; then
      stop_pid "$(cat "$D/run/$name.pid")"
      $SUDO rm -f "$D/run/$name.pid"
    fi
  done
  for conf in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do  # ours only
    if [ -f "$conf" ] && [ "$(head -1 "$conf")" = "$MARK" ]; then $SUDO rm -f "$conf"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start | stop" >&2; exit 2 ;;
esac
