#!/usr/bin/env bash
# The demo: a small generated Cybershake-like version, run through the pipeline
# with a local directory as the remote. Usage: examples/demo.sh [WORK_DIR]
set -euo pipefail
work="${1:-demo_run}"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$work"
mkdir -p "$work"
python "$here/cybershake_tree.py" "$work/v22p12"
echo
echo "== cs-sync-preprocess =="
cs-sync-preprocess "$work/v22p12" "$work/v22p12/list.txt" \
  --out_file "$work/files_to_sync.yaml" --stocktake_csv "$work/stocktake.csv"
echo
echo "outputs: $work/files_to_sync.yaml $work/stocktake.csv"
