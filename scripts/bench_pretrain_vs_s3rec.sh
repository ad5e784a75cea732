#!/usr/bin/env bash
# S3-Rec pre-training speed: the S3-Rec authors' run_pretrain.py against seqrec's stage=pretrain,
# one epoch each on one CPU thread, alternated A B A B so that machine load hits both alike.
#
#   scripts/bench_pretrain_vs_s3rec.sh <checkout of aHuiWang/CIKM2020-S3Rec> [ROUNDS=2] [DATASET=Beauty]
#
# The authors' code runs unchanged from its own folder (its data/ holds the same files as seqrec's
# data/s3rec/). Wall seconds per epoch of each round go to outputs/bench-pretrain/<dataset>.csv and
# are printed with the ratio of the medians. A round of Beauty takes about 25 minutes on a 2-core CPU
# (the authors' epoch ≈ 22 min, seqrec's ≈ 2 min): run it when nothing else uses the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
AUTHORS=${1:?usage: $0 <CIKM2020-S3Rec checkout> [ROUNDS] [DATASET]}
ROUNDS=${2:-2}
DATASET=${3:-Beauty}
PY=$(command -v "${PYTHON:-$PWD/.venv/bin/python}")  # absolute: the authors' code runs from its folder
AUTHORS_PY=${AUTHORS_PYTHON:-$PY}  # its imports (tqdm, numpy, torch) are seqrec's too
declare -A NAMES=([Beauty]=beauty [Sports_and_Outdoors]=sports [Toys_and_Games]=toys [Yelp]=yelp [LastFM]=lastfm)
NAME=${NAMES[$DATASET]:?unknown dataset $DATASET (Beauty, Sports_and_Outdoors, Toys_and_Games, Yelp, LastFM)}
[ -f "$AUTHORS/run_pretrain.py" ] || { echo "error: $AUTHORS has no run_pretrain.py; pass a checkout of aHuiWang/CIKM2020-S3Rec" >&2; exit 1; }
OUT=outputs/bench-pretrain
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1  # one thread each (seqrec also gets num_threads=1)
"$PY" -m seqrec.data.fetch "$NAME" >/dev/null
echo "round,code,seconds" > "$TMP/times.csv"
for round in $(seq 1 "$ROUNDS"); do
  SECONDS=0
  (cd "$AUTHORS" && "$AUTHORS_PY" run_pretrain.py --data_name "$DATASET" --pre_epochs 1 --no_cuda \
     --output_dir "$TMP/authors-$round/" > "$TMP/authors-$round.log" 2>&1) \
     || { echo "error: the authors' run_pretrain.py failed:" >&2; tail -n 20 "$TMP/authors-$round.log" >&2; exit 1; }
  echo "$round,authors,$SECONDS" >> "$TMP/times.csv"
  SECONDS=0
  "$PY" train.py model=s3rec stage=pretrain dataset="$NAME" model.pretrain.epochs=1 num_threads=1 \
     trainer.progress=false model.pretrain.dir="$TMP/seqrec-$round" hydra.run.dir="$TMP/seqrec-run-$round" \
     > "$TMP/seqrec-$round.log" 2>&1 \
     || { echo "error: seqrec's pre-training failed:" >&2; tail -n 20 "$TMP/seqrec-$round.log" >&2; exit 1; }
  echo "$round,seqrec,$SECONDS" >> "$TMP/times.csv"
  tail -n 2 "$TMP/times.csv"
done
cp "$TMP/times.csv" "$OUT/$NAME.csv"
"$PY" - "$OUT/$NAME.csv" <<'PY'
import sys
import pandas as pd
t = pd.read_csv(sys.argv[1])
med = t.groupby("code")["seconds"].median()
print(t.to_string(index=False))
print(f"median s/epoch: authors {med['authors']:.0f}, seqrec {med['seqrec']:.0f}; seqrec is {med['authors'] / med['seqrec']:.1f}x faster")
PY
