#!/bin/bash
# cs-sync: upload a Cybershake version with a Slurm job array, one shard per task.
#
# Each task runs `cs-sync-upload CS_ROOT FILES_TO_SYNC --shard TASK/CS_SHARDS`.
# The shards are fixed by the manifest (faults balanced by bytes), so tasks never
# write the same file, and re-submitting the same array continues what a task
# killed by its time limit or by scancel left unfinished.
#
# Variables (`cs-sync slurm upload` writes them in the settings block below;
# by hand, pass them with sbatch --export=ALL,NAME=value,...):
#   CS_ROOT         the version folder to upload (its name is the version)       required
#   FILES_TO_SYNC   files_to_sync.yaml written by cs-sync-preprocess             required
#   CS_SHARDS       number of shards; MUST equal the array size (0..N-1)         required
#   CS_UPLOAD_OPTS  more cs-sync-upload options, shell-quoted, e.g.
#                   "--remote dropbox:/QuakeCoRE/Public/Cybershake --tmp_dir /nesi/nobackup/me/tmp"
#                   (values with commas: `export CS_UPLOAD_OPTS=...` first, then --export=ALL)
#   CS_RUN_DIR      folder for the per-task exit files (tasks/)                  default: submit folder
#   CS_SYNC_BIN     folder holding the cs-sync commands (else: PATH)             optional
#   CS_REMOTE_FILE  a file (mode 0600) holding the remote root, for a connection string with
#                   credentials: exported as CS_SYNC_REMOTE, so it is in no script or log    optional
#
# Submit by hand (4 shards; the cluster picks the rest from the lines below):
#   sbatch --array=0-3 --export=ALL,CS_ROOT=/nesi/nobackup/me/v22p12,FILES_TO_SYNC=/nesi/nobackup/me/files_to_sync.yaml,CS_SHARDS=4 upload_array.sl
# Re-run only tasks 1 and 3 (same CS_SHARDS):  sbatch --array=1,3 --export=ALL,...,CS_SHARDS=4 upload_array.sl
#
#SBATCH --job-name=cs-sync-upload       # name shown by squeue
#SBATCH --account=nesi99999             # your project code: replace, or pass sbatch --account=...
##SBATCH --partition=large              # partition: remove one '#' to choose it (else the cluster's default)
#SBATCH --time=12:00:00                 # wall time per task (HH:MM:SS): size it with `cs-sync slurm upload --dry-run --rate ...`
#SBATCH --mem=4G                        # memory per task: files are streamed into the TARs, 4G is plenty
#SBATCH --cpus-per-task=2               # TAR packing with SHA-256 and rclone transfers
#SBATCH --output=cs-sync-upload_%A_%a.out  # log per task: %A = array job ID, %a = task index

# module add rclone                     # uncomment on clusters where rclone is an environment module

# ---- settings (cs-sync slurm writes values here) ----
# ---- end of settings ----

set -uo pipefail
: "${CS_ROOT:?set CS_ROOT to the version folder (sbatch --export=ALL,CS_ROOT=...)}"
: "${FILES_TO_SYNC:?set FILES_TO_SYNC to the files_to_sync.yaml written by cs-sync-preprocess}"
: "${CS_SHARDS:?set CS_SHARDS to the number of array tasks (sbatch --array=0-N-1 ... CS_SHARDS=N)}"
: "${SLURM_ARRAY_TASK_ID:?submit as an array job: sbatch --array=0-$((CS_SHARDS - 1)) ...}"
CS_RUN_DIR="${CS_RUN_DIR:-${SLURM_SUBMIT_DIR:-$PWD}}"
CS_UPLOAD_OPTS="${CS_UPLOAD_OPTS:-}"
bin="${CS_SYNC_BIN:+$CS_SYNC_BIN/}"   # cs-sync commands from CS_SYNC_BIN, else from PATH
# a remote whose connection string carries credentials comes from a 0600 file, never this script's text
if [ -n "${CS_REMOTE_FILE:-}" ]; then
  CS_SYNC_REMOTE="$(cat "$CS_REMOTE_FILE")" || { echo "cannot read CS_REMOTE_FILE=$CS_REMOTE_FILE" >&2; exit 3; }
  export CS_SYNC_REMOTE   # the remote root cs-sync uses when no --remote is given
fi

task="$SLURM_ARRAY_TASK_ID"
mkdir -p "$CS_RUN_DIR/tasks"
date -u +%FT%TZ > "$CS_RUN_DIR/tasks/upload_$task.started"
# At the time limit or on scancel Slurm sends SIGTERM to every process of the task:
# cs-sync-upload stops cleanly (exit 130); this shell only notes it and records the code.
trap 'echo "task $task: SIGTERM (time limit or scancel): re-submit the same command to continue"' TERM

eval "opts=($CS_UPLOAD_OPTS)"
echo "task $task of $CS_SHARDS on $(hostname): cs-sync-upload $CS_ROOT $FILES_TO_SYNC --shard $task/$CS_SHARDS ${opts[*]}"
"${bin}cs-sync-upload" "$CS_ROOT" "$FILES_TO_SYNC" --shard "$task/$CS_SHARDS" "${opts[@]}"
rc=$?
echo "$rc" > "$CS_RUN_DIR/tasks/upload_$task.exit.tmp" && mv -f "$CS_RUN_DIR/tasks/upload_$task.exit.tmp" "$CS_RUN_DIR/tasks/upload_$task.exit"
echo "task $task: cs-sync-upload exited with $rc"
exit "$rc"
