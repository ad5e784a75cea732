"""Peak memory and speed of ``seqrec.recommend`` on a synthetic catalogue (default 1M items).

Builds a synthetic finished run (an untrained SASRec with ``--items`` items, ``config.yaml``,
``best.pt``, ``ids.npz``, ``metrics.json``) and a JSON Lines file of random sequences in a
temporary folder, then runs ``python -m seqrec.recommend --sequences …`` in a fresh process and
reads that process's peak RSS (``ru_maxrss`` of the child). A second child only loads the run,
so the difference is what scoring adds. The score matrix of one batch is bounded by
``eval.batch_size=auto`` (2**26 floats on a CPU: 67 sequences at 1M items, 256 MB); a
``[sequences, N]`` matrix would need ``sequences × N × 4`` bytes.

    python scripts/bench_recommend.py                          # 1M items, 2,000 sequences, CPU
    python scripts/bench_recommend.py --items 100000 --sequences 10000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20


def make_run(folder: Path, n_items: int, max_len: int, seed: int) -> None:
    """A run folder the recommender accepts: SASRec (defaults of conf/model/sasrec.yaml)."""
    from hydra import compose, initialize_config_dir

    from seqrec.models import SASRec

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=["model=sasrec", f"dataset.max_len={max_len}", "output_dir=.", f"seed={seed}"],
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(seed)
    model = SASRec(n_items, max_len=max_len)
    torch.save({"model": model.state_dict(), "epoch": 0, "config": {}}, folder / "best.pt")
    tokens = np.array(["[PAD]"] + [f"i{i}" for i in range(1, n_items + 1)])
    np.savez(folder / "ids.npz", item_tokens=tokens, user_tokens=np.array(["u0"]))
    (folder / "metrics.json").write_text(json.dumps({"synthetic": True}))


def make_sequences(path: Path, n_items: int, n_sequences: int, length: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    items = rng.integers(1, n_items + 1, size=(n_sequences, length))
    path.write_text(
        "".join(
            json.dumps({"sequence_id": f"s{s}", "items": [f"i{i}" for i in row]}) + "\n" for s, row in enumerate(items)
        )
    )


def child(args: list[str]) -> tuple[float, float, str]:
    """Run one command; returns (seconds, the child's peak RSS in MB, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{done.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB; max over children so far
    return seconds, max(peak, before) / 1024, done.stderr.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--sequences", type=int, default=2_000)
    p.add_argument("--length", type=int, default=50, help="items per sequence (and max_len)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run, seqs, out = Path(tmp) / "run", Path(tmp) / "seqs.jsonl", Path(tmp) / "recs.csv"
        make_run(run, args.items, args.length, args.seed)
        make_sequences(seqs, args.items, args.sequences, args.length, args.seed)
        python = sys.executable
        # the loading baseline first (the peak is the max over children, so order matters)
        load_s, load_mb, _ = child(
            [
                python,
                "-c",
                f"import torch; torch.set_num_threads({args.num_threads}); "
                f"import seqrec; seqrec.load_run({str(run)!r})",
            ]
        )
        cmd = [
            python,
            "-m",
            "seqrec.recommend",
            "--run",
            str(run),
            "--sequences",
            str(seqs),
            "--k",
            str(args.k),
            "--out",
            str(out),
            "--num-threads",
            str(args.num_threads),
        ]
        total_s, peak_mb, log = child(cmd)
    matrix_mb = args.sequences * args.items * 4 / MB
    print(
        f"items={args.items:,}  sequences={args.sequences:,} × {args.length} items  k={args.k}  "
        f"threads={args.num_threads}  torch {torch.__version__}"
    )
    print(f"load only:           {load_s:6.1f} s   peak RSS {load_mb:8.0f} MB")
    print(
        f"load + recommend:    {total_s:6.1f} s   peak RSS {peak_mb:8.0f} MB (+{peak_mb - load_mb:.0f} MB for scoring)"
    )
    print(f"recommend log:       {' | '.join(log.splitlines())}")
    print(f"a [sequences, N] float32 score matrix would need {matrix_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
