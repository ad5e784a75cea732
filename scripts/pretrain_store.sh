#!/usr/bin/env bash
# S3-Rec pre-training for datasets without published S3-Rec models (Sports, Yelp), carried between
# machines through the repository:
#   1. copy results/pretrained/<dataset>-<hash>/ (an earlier machine's last.pt or final checkpoint)
#      into the pre-training store outputs/pretrained/,
#   2. pre-train to the dataset's epoch count (100; resumes after the copied epoch),
#   3. store the result back under results/pretrained/<dataset>-<hash>/: the finished epoch-<E>.pt
#      without its optimizer state (enough to fine-tune from, a third of the size), or while
#      unfinished (SIGTERM, a time limit) the latest last.pt, so the next machine continues.
# Commit results/pretrained/ afterwards. On a GPU this takes minutes; on a CPU hours (docs/results.md).
#
#   scripts/pretrain_store.sh [DATASETS=sports,yelp] [extra train.py overrides, e.g. device=cuda]
#   make bench-gpu PRETRAIN=sports,yelp      # the same at the end of the GPU benchmark
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATASETS=${1:-sports,yelp}
shift || true
STORE=${SEQREC_PRETRAIN_DIR:-outputs/pretrained}
KEEP=${PRETRAINED_RESULTS:-results/pretrained}   # the committed copies
mkdir -p "$STORE" "$KEEP"
# SIGTERM/SIGINT (a time limit, Ctrl-C) reach train.py too, which saves last.pt and stops; this
# script then goes on to store it instead of dying before the copy (a trap is not inherited)
trap 'echo "stopping: storing the latest checkpoint" >&2' TERM INT
for dataset in ${DATASETS//,/ }; do
  for saved in "$KEEP"/"$dataset"-*/; do
    [ -d "$saved" ] || continue
    mkdir -p "$STORE/$(basename "$saved")"
    cp -n "$saved"/* "$STORE/$(basename "$saved")/" 2>/dev/null || true
  done
  status=0
  "$PY" train.py model=s3rec stage=pretrain dataset="$dataset" trainer.progress=false \
      model.pretrain.dir="$STORE" hydra.run.dir="outputs/pretrain-runs/$dataset-$(date +%s)" "$@" || status=$?
  "$PY" - "$STORE" "$dataset" "$status" "$KEEP" <<'PYEOF'
import shutil, sys
from pathlib import Path
import torch
from seqrec.atomic import atomic_write
store, dataset, finished_ok = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "0"
for folder in sorted(store.glob(f"{dataset}-*")):
    if not (folder / "key.json").is_file():
        continue
    dest = Path(sys.argv[4]) / folder.name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / "key.json", dest / "key.json")
    finished = sorted(folder.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    last = folder / "last.pt"
    state = torch.load(last, map_location="cpu", weights_only=True) if last.is_file() else None
    if finished_ok and finished:  # train.py returned 0: the highest epoch file is the target epoch
        best = torch.load(finished[-1], map_location="cpu", weights_only=True)
        slim = {k: v for k, v in best.items() if k != "optimizer"}
        atomic_write(dest / finished[-1].name, lambda h: torch.save(slim, h))
        (dest / "last.pt").unlink(missing_ok=True)
        print(f"stored {dest / finished[-1].name} (epoch {best['epoch']}, without optimizer state)")
    elif state is not None:
        shutil.copy(last, dest / "last.pt")
        print(f"stored {dest / 'last.pt'} (epoch {state['epoch']}, unfinished: the next run continues it)")
PYEOF
  [ "$status" -eq 0 ] || exit "$status"
done
