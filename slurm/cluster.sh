#!/usr/bin/env bash
# A throw-away single-node Slurm cluster for cs-sync's tests and benchmarks.
#
#   bash slurm/cluster.sh ensure   # install (Debian packages) if needed, start if not running
#   bash slurm/cluster.sh start    # start (restarting cleanly what a dead cluster left)
#   bash slurm/cluster.sh stop     # cancel its jobs, stop its daemons by PID
#   bash slurm/cluster.sh status   # exit 0 when it answers, 1 otherwise
#   eval "$(bash slurm/cluster.sh env)"   # export SLURM_CONF for sbatch, squeue, ...
#
# Everything it writes (slurm.conf, munge key and socket, logs, spool, pid files)
# lives under one directory, $CS_SYNC_SLURM_DIR (default /tmp/cs_sync_slurm), so
# `stop` kills only the daemons it started and nothing else on the machine is
# touched. It runs on a machine without systemd or cgroups (a container, a CI VM):
# process tracking by /proc, no task plugin, no accounting daemon; completed jobs
# are recorded in a text file that `sacct -c` reads.
#
# `ensure` is what `make test` calls. When the cluster cannot be brought up (not
# root, no apt-get) it prints why and exits 0, so the Slurm tests skip with that
# reason; with CS_SYNC_REQUIRE_SLURM=1 (set by .ci/run) it fails instead.
set -euo pipefail

DIR="${CS_SYNC_SLURM_DIR:-/tmp/cs_sync_slurm}"
CONF="$DIR/etc/slurm.conf"
MUNGE_SOCKET="$DIR/munge/run/munge.socket.2"
PACKAGES=(slurmctld slurmd slurm-client munge)
READY_SECONDS="${CS_SYNC_SLURM_READY_SECONDS:-60}"

say() { echo "slurm/cluster.sh: $*" >&2; }

# Cannot bring the cluster up: skip (exit 0) unless the Slurm tests are required.
cannot() {
  if [ "${CS_SYNC_REQUIRE_SLURM:-0}" = 1 ]; then
    say "ERROR: $* (CS_SYNC_REQUIRE_SLURM=1, so this is a failure)"
    exit 1
  fi
  say "not starting a Slurm cluster: $*; the Slurm tests will be skipped"
  exit 0
}

pid_of() {  # pid from a pid file, if that process is alive
  local f="$1" pid
  [ -s "$f" ] || return 1
  pid="$(cat "$f" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

installed() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v sbatch >/dev/null && command -v sacct >/dev/null &&
    command -v munged >/dev/null && command -v munge >/dev/null
}

install_packages() {
  installed && return 0
  [ "$(id -u)" = 0 ] || cannot "Slurm is not installed and we are not root (cannot apt-get install ${PACKAGES[*]})"
  command -v apt-get >/dev/null || cannot "Slurm is not installed and apt-get is not available"
  say "installing ${PACKAGES[*]} (Debian packages; no service is started)"
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # exit 101 = "action forbidden": the packages' init scripts must not start daemons
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"; } \
    > "$DIR/log/apt.log" 2>&1 || rc=$?
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ "$rc" != 0 ]; then
    tail -n 20 "$DIR/log/apt.log" >&2
    cannot "apt-get install ${PACKAGES[*]} failed (log: $DIR/log/apt.log)"
  fi
  installed || cannot "packages installed but slurmctld/slurmd/sbatch/munged still not found"
}

write_config() {
  mkdir -p "$DIR"/{etc,log,run,spool/ctld,spool/d,munge/run,munge/lib}
  chmod 755 "$DIR" "$DIR/munge" "$DIR/munge/run"
  chmod 700 "$DIR/munge/lib"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    ( umask 077; head -c 1024 /dev/urandom > "$DIR/munge/munge.key" )
  fi
  chmod 400 "$DIR/munge/munge.key"
  local node host
  # first line of `slurmd -C`: NodeName=... CPUs=... Boards=... RealMemory=...
  node="$(slurmd -C | head -n 1)"
  host="${node#NodeName=}"; host="${host%% *}"
  cat > "$CONF.tmp" <<EOF
# Written by slurm/cluster.sh: a single-node test cluster; state under $DIR
ClusterName=cssync
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${CS_SYNC_SLURMCTLD_PORT:-6817}
SlurmdPort=${CS_SYNC_SLURMD_PORT:-6818}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# no systemd, no cgroups: track processes through /proc, no task plugin
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: completed jobs go to a text file that \`sacct -c\` reads
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
MailProg=/bin/true
ReturnToService=2
KillWait=5
MinJobAge=600
# 2 cores, but an array of 3-4 upload tasks (network-bound) must run at once:
# each core may be given to up to 4 jobs
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
  mv "$CONF.tmp" "$CONF"
}

start_munge() {
  if pid_of "$DIR/run/munged.pid" >/dev/null; then return 0; fi
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  munged --force --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/lib/munged.seed" \
    || { tail -n 5 "$DIR/log/munged.log" >&2 || true; return 1; }
  local i
  for i in $(seq 50); do
    munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  say "munged did not answer on $MUNGE_SOCKET (log: $DIR/log/munged.log)"
  return 1
}

start_daemon() {  # name: slurmctld or slurmd; both read SLURM_CONF, daemonize, write their pid file
  local name="$1"
  if pid_of "$DIR/run/$name.pid" >/dev/null; then return 0; fi
  rm -f "$DIR/run/$name.pid"
  SLURM_CONF="$CONF" "$name" -f "$CONF" \
    || { say "$name failed to start (log: $DIR/log/$name.log)"; tail -n 10 "$DIR/log/$name.log" >&2 || true; return 1; }
}

ready() {  # the controller answers and the node takes jobs
  local state
  SLURM_CONF="$CONF" scontrol ping >/dev/null 2>&1 || return 1
  state="$(SLURM_CONF="$CONF" sinfo -h -N -o '%T' 2>/dev/null | head -n 1)"
  case "$state" in
    idle*|mixed*|allocated*|completing*) return 0 ;;
    down*|drain*|fail*)  # a node left down by a previous run: put it back
      SLURM_CONF="$CONF" scontrol update nodename=ALL state=resume >/dev/null 2>&1 || true
      return 1 ;;
    *) return 1 ;;
  esac
}

running() {
  [ -f "$CONF" ] &&
    pid_of "$DIR/run/munged.pid" >/dev/null &&
    pid_of "$DIR/run/slurmctld.pid" >/dev/null &&
    pid_of "$DIR/run/slurmd.pid" >/dev/null &&
    ready
}

stop_pid_file() {
  local f="$1" pid i
  pid="$(pid_of "$f")" || { rm -f "$f"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"
}

cmd_stop() {
  if [ -f "$CONF" ] && pid_of "$DIR/run/slurmctld.pid" >/dev/null; then
    # cancel this cluster's jobs so no job step outlives its slurmd
    SLURM_CONF="$CONF" scancel --full --quiet --state=PENDING >/dev/null 2>&1 || true
    SLURM_CONF="$CONF" scancel --full --quiet --state=RUNNING >/dev/null 2>&1 || true
  fi
  stop_pid_file "$DIR/run/slurmd.pid"
  stop_pid_file "$DIR/run/slurmctld.pid"
  stop_pid_file "$DIR/run/munged.pid"
  say "stopped (state kept in $DIR)"
}

cmd_start() {
  mkdir -p "$DIR/log"
  install_packages
  [ "$(id -u)" = 0 ] || cannot "the test cluster runs its daemons as root (SlurmUser=root); we are uid $(id -u)"
  # a half-dead cluster (one daemon gone) is restarted from scratch
  if [ -f "$CONF" ] && ! running; then cmd_stop 2>/dev/null; fi
  write_config
  local ok=1
  start_munge && start_daemon slurmctld && start_daemon slurmd || ok=0
  if [ "$ok" = 1 ]; then
    local i
    for i in $(seq $((READY_SECONDS * 5))); do
      if ready; then
        say "running: $(SLURM_CONF="$CONF" sinfo -h -N -o '%N %T %c CPUs') (SLURM_CONF=$CONF)"
        return 0
      fi
      sleep 0.2
    done
    say "the node did not become ready within ${READY_SECONDS}s (logs: $DIR/log/)"
    tail -n 10 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
  fi
  cmd_stop 2>/dev/null || true
  if [ "${CS_SYNC_REQUIRE_SLURM:-0}" = 1 ]; then
    say "ERROR: could not start the Slurm cluster (logs: $DIR/log/)"
    exit 1
  fi
  say "could not start the Slurm cluster (logs: $DIR/log/); the Slurm tests will be skipped"
  exit 0
}

cmd_ensure() {
  if running; then
    say "already running (SLURM_CONF=$CONF)"
    return 0
  fi
  cmd_start
}

cmd_status() {
  if running; then
    echo "running: SLURM_CONF=$CONF"
    SLURM_CONF="$CONF" sinfo -N
    return 0
  fi
  echo "not running (state directory: $DIR)"
  return 1
}

cmd_env() {  # nothing is printed when the cluster is not running, so tests skip
  if running; then
    printf 'export SLURM_CONF=%q\n' "$CONF"
  fi
}

case "${1:-}" in
  ensure) cmd_ensure ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 ensure|start|stop|status|env" >&2; exit 2 ;;
esac
