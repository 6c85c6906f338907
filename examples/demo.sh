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
  --remote "$work/remote" --tmp_dir "$work/tmp" --max-size 1M --progress-interval 5
echo
echo "remote: $work/remote/v22p12 (one folder per fault; sidecars in _cs_sync/)"


# -- download: status of the uploaded version, one fault back, one realisation selectively --
# Runs after the upload step, which writes the remote to "$work/remote". Without it
# (a tree where cs-sync-upload is not available yet) this part is skipped.
remote="$work/remote"
if [ ! -d "$remote/v22p12" ]; then
  echo
  echo "== download: skipped (no uploaded version in $remote; the upload step did not run) =="
  exit 0
fi
echo
echo "== cs-sync status v22p12 =="
cs-sync status v22p12 --remote "$remote"
echo
echo "== cs-sync-download: fault AlpineK2T, every data type =="
cs-sync-download v22p12 --remote "$remote" --inc_fault AlpineK2T --download_dir "$work/download" --cleanup
n=0
for ev in "$work"/v22p12/Runs/AlpineK2T/AlpineK2T*/; do
  ev="$(basename "$ev")"
  name="${ev}_BB.bin"
  [ "$ev" = AlpineK2T ] && name="AlpineK2T_BB.bin"
  cmp "$work/v22p12/Runs/AlpineK2T/$ev/BB/Acc/BB.bin" "$work/download/AlpineK2T/BB/$name"
  n=$((n + 1))
done
echo "verified: $n BB.bin files of AlpineK2T are byte-identical to the sources"
echo
echo "== cs-sync-download: only realisation 4 of Wairau (byte ranges when the sidecar allows) =="
cs-sync-download v22p12 --remote "$remote" --inc_fault Wairau -t BB --rel 4 --download_dir "$work/download_rel"
got="$(cd "$work/download_rel/Wairau/BB" && ls)"
[ "$got" = "Wairau_REL04_BB.bin" ] || { echo "expected only Wairau_REL04_BB.bin, got: $got" >&2; exit 1; }
cmp "$work/v22p12/Runs/Wairau/Wairau_REL04/BB/Acc/BB.bin" "$work/download_rel/Wairau/BB/Wairau_REL04_BB.bin"
echo "verified: Wairau_REL04_BB.bin is byte-identical to its source, and nothing else came down"
echo
echo "== cs-sync report v22p12: the version as one HTML page (open it in a browser; no network needed) =="
cs-sync report v22p12 --remote "$remote" --manifest "$work/files_to_sync.yaml" -o "$work/v22p12_report.html" >/dev/null
echo "report: $(cd "$work" && pwd)/v22p12_report.html"
