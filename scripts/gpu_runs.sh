#!/usr/bin/env bash
# The runs that wait for a GPU, on one CUDA GPU within a time budget (`make gpu-runs`), for a
# machine lent for minutes:
#   1. the S3-Rec pre-training of Sports and Yelp, resumed from results/pretrained/ (Sports is
#      finished there and only copied into the store; Yelp continues where a CPU left it);
#   2. every run `python -m seqrec.report.plan` lists (the seeds Table 2 still lacks), then the
#      lines of scripts/gpu_runs.txt whose result folder is not in results/leaderboard/ yet, JOBS
#      at a time on the one GPU; the Yelp S3-Rec runs wait for step 1;
#   3. every finished run exported as a result folder and packed for the way back:
#      $OUT/table2.tar.gz and $OUT/leaderboard.tar.gz (result folders), $OUT/pretrained.tar.gz.part-*
#      (the pre-trained models this machine changed, split under 16 MiB) and $OUT/logs.tar.gz.
# At BUDGET seconds every unfinished run gets SIGTERM: it saves last.pt and is not exported, and a
# stopped pre-training stores its last.pt, so the next machine continues both.
# Back on the development machine:
#   tar -xzf table2.tar.gz -C results/table2 && tar -xzf leaderboard.tar.gz -C results/leaderboard
#   cat pretrained.tar.gz.part-* | tar -xzf - -C results/pretrained
#   make pages && git add results docs README.md && git commit
#
#   BUDGET=480 JOBS=8 OUT=/tmp/out PYTHON=python3 scripts/gpu_runs.sh
# Needs: data/ (`make data`, or data/s3rec carried to the machine) and, for S3-Rec on Beauty, Toys
# and LastFM, the published models at the path their runs name (../shared/reference/
# s3rec_pretrained/; PUBLISHED=<folder> copies them there first).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-480}
JOBS=${JOBS:-8}
OUT=${OUT:-outputs/gpu-runs}
DEVICE=${DEVICE:-cuda} # DEVICE=cpu: the same queue on the CPU (a dry run of this script)
DEADLINE=$(($(date +%s) + BUDGET))
THREADS=$(($(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1))
SETUP="device=$DEVICE num_threads=$THREADS trainer.progress=false"
mkdir -p "$OUT"
[ "$DEVICE" = cpu ] || $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device (DEVICE=cpu runs the queue on the CPU)')"
$PY -m seqrec.data.fetch sports toys yelp beauty lastfm
if [ -n "${PUBLISHED:-}" ]; then
  mkdir -p ../shared/reference/s3rec_pretrained && cp -n "$PUBLISHED"/*.pt ../shared/reference/s3rec_pretrained/
fi

left() { echo $((DEADLINE - $(date +%s))); }
run_one() { # one train.py command line, stopped (SIGTERM) at the deadline
  local t
  t=$(left)
  [ "$t" -gt 60 ] || return 0
  echo "start $(date +%T) $1" >>"$OUT/queue.log"
  timeout --signal=TERM --kill-after=60 "$t" bash -c "$1" >>"$OUT/runs.log" 2>&1 || echo "stopped or failed ($?): $1" >>"$OUT/queue.log"
}
export -f run_one left
export DEADLINE OUT

# the queue: Table 2 first (the Yelp S3-Rec runs apart), then the runs beyond it not yet in results/
$PY -m seqrec.report.plan --runs results/table2 --per-run --commands $SETUP hydra.sweep.dir=outputs/table2 |
  sed "s|^python |$PY |" >"$OUT/queue.txt"
while read -r folder overrides; do
  case $folder in "" | "#"*) continue ;; esac
  [ -d "results/leaderboard/$folder" ] || echo "$PY train.py -m $overrides $SETUP" >>"$OUT/queue.txt"
done <scripts/gpu_runs.txt
grep -v "dataset=yelp model=s3rec" "$OUT/queue.txt" >"$OUT/queue-main.txt" || true
grep "dataset=yelp model=s3rec" "$OUT/queue.txt" >"$OUT/queue-yelp-s3rec.txt" || true
echo "$(wc -l <"$OUT/queue.txt") runs queued, $JOBS at a time, $THREADS CPU threads each, ${BUDGET}s" | tee "$OUT/queue.log"

( # pre-training, then the runs that fine-tune from it (one job slot)
  t=$(left)
  [ "$t" -gt 60 ] || exit 0
  timeout --signal=TERM --kill-after=60 "$t" env PYTHON="$PY" scripts/pretrain_store.sh sports,yelp \
    device=$DEVICE num_threads=$THREADS >"$OUT/pretrain.log" 2>&1 || echo "pre-training stopped ($?)" >>"$OUT/queue.log"
  while IFS= read -r line; do run_one "$line"; done <"$OUT/queue-yelp-s3rec.txt"
) &
xargs -d '\n' -P $((JOBS > 1 ? JOBS - 1 : 1)) -I{} bash -c 'run_one "$1"' _ {} <"$OUT/queue-main.txt"
wait

pack() { # RUNS NAME [--keep-layout]: export the finished runs of RUNS into $OUT/NAME.tar.gz
  mkdir -p "$OUT/stage-$2"
  [ -d "$1" ] && $PY -m seqrec.report.export "$1" --into "$OUT/stage-$2" "${@:3}" | tee -a "$OUT/queue.log" || true
  tar -czf "$OUT/$2.tar.gz" -C "$OUT/stage-$2" .
  rm -rf "$OUT/stage-$2"
}
pack outputs/table2 table2
pack outputs/leaderboard leaderboard --keep-layout
# the pre-trained models this machine changed (a last.pt with its optimizer state is 17 MB)
mapfile -t changed < <(git status --porcelain --untracked-files=all -- results/pretrained | awk '{print $2}' |
  cut -d/ -f3 | sort -u)
if [ "${#changed[@]}" -gt 0 ]; then
  tar -czf - -C results/pretrained "${changed[@]}" | split -b 15m - "$OUT/pretrained.tar.gz.part-"
fi
touch "$OUT/runs.log" "$OUT/pretrain.log"
tar -czf "$OUT/logs.tar.gz" -C "$OUT" queue.txt queue.log runs.log pretrain.log
rm -f "$OUT"/queue*.txt "$OUT"/*.log
echo "done: $(grep -c '^wrote' <(tar -xzOf "$OUT/logs.tar.gz" queue.log) || true) result folders written"
