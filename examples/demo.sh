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
echo
echo "== cs-sync-upload (remote: the local folder $work/remote) =="
# a small part cap so that the demo shows split sets (_0.tar ... _nf.tar)
cs-sync-upload "$work/v22p12" "$work/files_to_sync.yaml" \
  --remote "$work/remote" --tmp_dir "$work/tmp" --max-size 600K --progress-interval 5
echo
echo "remote: $work/remote/v22p12 (one folder per fault; sidecars in _cs_sync/)"
