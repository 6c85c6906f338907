#!/bin/bash
# cs-sync: summary of an upload, download or index array, run after it ends.
#
# Submitted with --dependency=afterany:ARRAY_JOB_ID, so it runs whether the
# tasks succeeded, failed, hit their time limit or were cancelled. For an
# upload it lists the remote version once (`cs-sync status`, as JSON and as
# text, into CS_RUN_DIR); for both it reads each task's exit file and writes
# CS_RUN_DIR/report.txt saying which shards failed and which sets are
# incomplete, and CS_RUN_DIR/report.html (the same, with an upload's version
# page drawn from status.json: open it in a browser). Exit code 0 only when every shard succeeded and, for an upload,
# the version on the remote is complete.
#
# Variables (`cs-sync slurm` writes them in the settings block below;
# by hand, pass them with sbatch --export=ALL,NAME=value,...):
#   CS_KIND        upload, download or index                                    required
#   CS_VER         the version, e.g. v22p12 (CS_ROOT's folder name)             required
#   CS_SHARDS      number of shards of the array                                required
#   CS_RUN_DIR     folder holding the array's tasks/ exit files                 default: submit folder
#   CS_REMOTE      remote root (as --remote of upload/download/index)           default: cs-sync's default
#   FILES_TO_SYNC  the upload's manifest: status then also names sets not yet uploaded    optional
#   CS_ARRAY_JOB   the array's job ID: the report adds Slurm's state per task   optional
#   CS_SYNC_BIN    folder holding the cs-sync commands (else: PATH)             optional
#   CS_REMOTE_FILE a file (mode 0600) holding the remote root, for a connection string with
#                  credentials: exported as CS_SYNC_REMOTE, so it is in no script or log    optional
#
# Submit by hand after an array whose job ID is 1234:
#   sbatch --dependency=afterany:1234 --export=ALL,CS_ARRAY_JOB=1234,CS_KIND=upload,CS_VER=v22p12,CS_SHARDS=4,FILES_TO_SYNC=/nesi/nobackup/me/files_to_sync.yaml summary.sl
#
#SBATCH --job-name=cs-sync-summary      # name shown by squeue
#SBATCH --account=nesi99999             # your project code: replace, or pass sbatch --account=...
##SBATCH --partition=large              # partition: remove one '#' to choose it (else the cluster's default)
#SBATCH --time=01:00:00                 # wall time (HH:MM:SS): one listing of the remote version
#SBATCH --mem=2G                        # memory: the listing of a large version fits easily
#SBATCH --cpus-per-task=1               # one rclone listing
#SBATCH --output=cs-sync-summary_%j.out  # log: %j = job ID

# module add rclone                     # uncomment on clusters where rclone is an environment module

# ---- settings (cs-sync slurm writes values here) ----
# ---- end of settings ----

set -uo pipefail
: "${CS_KIND:?set CS_KIND to upload, download or index}"
: "${CS_VER:?set CS_VER to the version (the folder name of CS_ROOT)}"
: "${CS_SHARDS:?set CS_SHARDS to the number of tasks of the array}"
CS_RUN_DIR="${CS_RUN_DIR:-${SLURM_SUBMIT_DIR:-$PWD}}"
bin="${CS_SYNC_BIN:+$CS_SYNC_BIN/}"   # cs-sync commands from CS_SYNC_BIN, else from PATH
# a remote whose connection string carries credentials comes from a 0600 file, never this script's text
if [ -n "${CS_REMOTE_FILE:-}" ]; then
  CS_SYNC_REMOTE="$(cat "$CS_REMOTE_FILE")" || { echo "cannot read CS_REMOTE_FILE=$CS_REMOTE_FILE" >&2; exit 3; }
  export CS_SYNC_REMOTE   # the remote root cs-sync uses when no --remote is given
fi

report_args=("$CS_RUN_DIR" --kind "$CS_KIND" --tasks "$CS_SHARDS" --cs_ver "$CS_VER")
if [ -n "${CS_ARRAY_JOB:-}" ]; then report_args+=(--array-job "$CS_ARRAY_JOB"); fi
if [ "$CS_KIND" = upload ]; then
  status_args=("$CS_VER")
  if [ -n "${CS_REMOTE:-}" ]; then status_args+=(--remote "$CS_REMOTE"); fi
  if [ -n "${FILES_TO_SYNC:-}" ]; then status_args+=(--manifest "$FILES_TO_SYNC"); fi
  echo "cs-sync status ${status_args[*]}"
  "${bin}cs-sync" status "${status_args[@]}" --json > "$CS_RUN_DIR/status.json"
  report_args+=(--status-exit "$?" --status-json "$CS_RUN_DIR/status.json")
  "${bin}cs-sync" status "${status_args[@]}" > "$CS_RUN_DIR/status.txt" 2>&1
fi
"${bin}cs-sync" slurm report "${report_args[@]}"
rc=$?
echo "summary: exit $rc (report: $CS_RUN_DIR/report.txt and $CS_RUN_DIR/report.html)"
exit "$rc"
