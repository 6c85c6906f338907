#!/bin/bash
# cs-sync: index the sets of a Cybershake version made by the older scripts, one shard per task.
#
# Each task runs `cs-sync index CS_VER --shard TASK/CS_SHARDS` with the same
# options: it reads the TAR headers of its shard's sets without a sidecar (byte
# ranges only; with --hash-members each part is streamed once) and writes their
# index sidecars to CS_VER/_cs_sync/. The shards are fixed by the remote listing
# (faults balanced by the bytes of their selected sets, whatever is indexed
# already), so tasks never write the same sidecar, and re-submitting the same
# array continues what a killed task left unfinished.
#
# Variables (`cs-sync slurm index` writes them in the settings block below;
# by hand, pass them with sbatch --export=ALL,NAME=value,...):
#   CS_VER          the version to index, e.g. v18p6                             required
#   CS_SHARDS       number of shards; MUST equal the array size (0..N-1)         required
#   CS_INDEX_OPTS   more cs-sync index options, shell-quoted, e.g.
#                   "--remote dropbox:/QuakeCoRE/Public/Cybershake -t BB --hash-members"
#                   (values with commas: `export CS_INDEX_OPTS=...` first, then --export=ALL)
#   CS_RUN_DIR      folder for the per-task exit files (tasks/)                  default: submit folder
#   CS_SYNC_BIN     folder holding the cs-sync commands (else: PATH)             optional
#   CS_REMOTE_FILE  a file (mode 0600) holding the remote root, for a connection string with
#                   credentials: exported as CS_SYNC_REMOTE, so it is in no script or log    optional
#
# Submit by hand (4 shards):
#   sbatch --array=0-3 --export=ALL,CS_VER=v18p6,CS_SHARDS=4,CS_INDEX_OPTS="--remote dropbox:/QuakeCoRE/Public/Cybershake" index_array.sl
#
#SBATCH --job-name=cs-sync-index        # name shown by squeue
#SBATCH --account=nesi99999             # your project code: replace, or pass sbatch --account=...
##SBATCH --partition=large              # partition: remove one '#' to choose it (else the cluster's default)
#SBATCH --time=04:00:00                 # wall time per task (HH:MM:SS): headers only is quick; --hash-members reads every byte
#SBATCH --mem=2G                        # memory per task: headers and streamed parts, never whole parts
#SBATCH --cpus-per-task=2               # one rclone, the header walks (and SHA-256 with --hash-members)
#SBATCH --output=cs-sync-index_%A_%a.out  # log per task: %A = array job ID, %a = task index

# module add rclone                     # uncomment on clusters where rclone is an environment module

# ---- settings (cs-sync slurm writes values here) ----
# ---- end of settings ----

set -uo pipefail
: "${CS_VER:?set CS_VER to the version to index (sbatch --export=ALL,CS_VER=...)}"
: "${CS_SHARDS:?set CS_SHARDS to the number of array tasks (sbatch --array=0-N-1 ... CS_SHARDS=N)}"
: "${SLURM_ARRAY_TASK_ID:?submit as an array job: sbatch --array=0-$((CS_SHARDS - 1)) ...}"
CS_RUN_DIR="${CS_RUN_DIR:-${SLURM_SUBMIT_DIR:-$PWD}}"
CS_INDEX_OPTS="${CS_INDEX_OPTS:-}"
bin="${CS_SYNC_BIN:+$CS_SYNC_BIN/}"   # cs-sync commands from CS_SYNC_BIN, else from PATH
# a remote whose connection string carries credentials comes from a 0600 file, never this script's text
if [ -n "${CS_REMOTE_FILE:-}" ]; then
  CS_SYNC_REMOTE="$(cat "$CS_REMOTE_FILE")" || { echo "cannot read CS_REMOTE_FILE=$CS_REMOTE_FILE" >&2; exit 3; }
  export CS_SYNC_REMOTE   # the remote root cs-sync uses when no --remote is given
fi

task="$SLURM_ARRAY_TASK_ID"
mkdir -p "$CS_RUN_DIR/tasks"
date -u +%FT%TZ > "$CS_RUN_DIR/tasks/index_$task.started"
# At the time limit or on scancel Slurm sends SIGTERM to every process of the task:
# cs-sync index writes the sidecars it finished and stops (exit 130); this shell records the code.
trap 'echo "task $task: SIGTERM (time limit or scancel): re-submit the same command to continue"' TERM

eval "opts=($CS_INDEX_OPTS)"
echo "task $task of $CS_SHARDS on $(hostname): cs-sync index $CS_VER --shard $task/$CS_SHARDS ${opts[*]}"
"${bin}cs-sync" index "$CS_VER" --shard "$task/$CS_SHARDS" "${opts[@]}"
rc=$?
echo "$rc" > "$CS_RUN_DIR/tasks/index_$task.exit.tmp" && mv -f "$CS_RUN_DIR/tasks/index_$task.exit.tmp" "$CS_RUN_DIR/tasks/index_$task.exit"
echo "task $task: cs-sync index exited with $rc"
exit "$rc"
