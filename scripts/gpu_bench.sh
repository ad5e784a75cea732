#!/usr/bin/env bash
# GPU benchmark (`make bench-gpu`), sized for < 8 minutes on one H200 (estimated: it has not yet
# run on a GPU):
#   1. the `make bench` table for Beauty and Sports on CUDA (2 timed epochs per configuration);
#   2. one early-stopped SASRec + CCE run on Sports, fp32 and bf16, beside the paper's seconds per
#      epoch (RTX 3090: BCE 11.21, CCE 12.24, CE 12.62 s/epoch).
# Needs the data in data/ (`make data`, or carry data/ to the machine) and seqrec's dependencies
# in $PYTHON (a machine with torch but without hydra-core/omegaconf: install their pure-Python
# wheels first, `pip wheel --no-deps hydra-core==1.3.2 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3`).
# PRETRAIN=sports,yelp also pre-trains S3-Rec on those datasets on the GPU at the end and stores the
# models under results/pretrained/ (scripts/pretrain_store.sh; commit them afterwards).
# Writes outputs/bench-gpu/. The first epoch of a run includes CUDA/cuBLAS warm-up; the bench
# table excludes it (warm-up batches), the early-stopped runs average it in.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-outputs/bench-gpu}
mkdir -p "$OUT"
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: use make bench for the CPU')"
$PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee "$OUT/device.txt"
$PY -m seqrec.data.fetch beauty sports

$PY scripts/bench.py --device cuda --datasets beauty sports --epochs 2 --repeats 1 --warmup 5 --out "$OUT"

for precision in fp32 bf16; do
  $PY train.py dataset=sports model=sasrec loss=cce device=cuda trainer.progress=false \
      trainer.precision=$precision hydra.run.dir="$OUT/sports-sasrec-cce-$precision"
done

$PY - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
paper = {"bce": 11.21, "ce": 12.62, "cce": 12.24}
print("\nSASRec on Sports, seconds per training epoch (paper: RTX 3090)")
for p in ("fp32", "bf16"):
    m = json.loads((out / f"sports-sasrec-cce-{p}" / "metrics.json").read_text())
    print(f"  CCE {p}: {m['seconds_per_epoch']:.2f} s/epoch (paper {paper['cce']}), best epoch {m['best_epoch']}/{m['epochs_run']}, "
          f"test HR@10 {m['test/hr@10']:.4f} NDCG@10 {m['test/ndcg@10']:.4f} (paper 0.0541 / 0.0318), total {m['total_seconds']:.0f} s")
PYEOF

if [ -n "${PRETRAIN:-}" ]; then
  PYTHON=$PY scripts/pretrain_store.sh "$PRETRAIN" device=cuda
fi
