#!/bin/bash
# cs-sync: preprocess a Cybershake version as a Slurm job (one task).
#
# Runs `cs-sync-preprocess CS_ROOT FAULT_LIST`, which finds each fault's files,
# checks the expected counts and writes files_to_sync.yaml and stocktake.csv.
# Exit code 4 means the outputs were written but the stocktake found missing
# files: chain the upload with --dependency=afterok:JOBID so it only starts
# when everything was found.
#
# Variables (pass them with sbatch --export=ALL,NAME=value,...):
#   CS_ROOT             the version folder, e.g. /nesi/nobackup/me/v22p12         required
#   FAULT_LIST          list.txt of the version                                   required
#   CS_PREPROCESS_OPTS  more cs-sync-preprocess options, shell-quoted, e.g.
#                       "--out_file /nesi/nobackup/me/files_to_sync.yaml --stocktake_csv /nesi/nobackup/me/stocktake.csv"
#   CS_SYNC_BIN         folder holding the cs-sync commands (else: PATH)          optional
#
# Submit by hand:
#   sbatch --export=ALL,CS_ROOT=/nesi/nobackup/me/v22p12,FAULT_LIST=/nesi/nobackup/me/v22p12/list.txt preprocess.sl
#
#SBATCH --job-name=cs-sync-preprocess   # name shown by squeue
#SBATCH --account=nesi99999             # your project code: replace, or pass sbatch --account=...
##SBATCH --partition=large              # partition: remove one '#' to choose it (else the cluster's default)
#SBATCH --time=01:00:00                 # wall time (HH:MM:SS): a listing of the tree, minutes on Lustre
#SBATCH --mem=2G                        # memory: the manifest of a large version fits easily
#SBATCH --cpus-per-task=2               # directory listings overlap on a small thread pool
#SBATCH --output=cs-sync-preprocess_%j.out  # log: %j = job ID

# module add rclone                     # uncomment on clusters where rclone is an environment module

# ---- settings (cs-sync slurm writes values here) ----
# ---- end of settings ----

set -uo pipefail
: "${CS_ROOT:?set CS_ROOT to the version folder (sbatch --export=ALL,CS_ROOT=...)}"
: "${FAULT_LIST:?set FAULT_LIST to the list.txt of the version}"
CS_PREPROCESS_OPTS="${CS_PREPROCESS_OPTS:-}"
bin="${CS_SYNC_BIN:+$CS_SYNC_BIN/}"   # cs-sync commands from CS_SYNC_BIN, else from PATH

eval "opts=($CS_PREPROCESS_OPTS)"
echo "cs-sync-preprocess $CS_ROOT $FAULT_LIST ${opts[*]}"
"${bin}cs-sync-preprocess" "$CS_ROOT" "$FAULT_LIST" "${opts[@]}"
rc=$?
echo "cs-sync-preprocess exited with $rc"
exit "$rc"
