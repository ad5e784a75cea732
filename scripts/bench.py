"""``make bench``: training and evaluation speed of every model × loss, and what each optimisation buys.

For each dataset × model × loss it measures, in a fresh subprocess (so peak memory does not mix):
seconds per training epoch, seconds for one full-ranking evaluation of the validation split, and
peak resident memory. The optimisations are then switched off one at a time *in the same run*:

- ``bucketing off``: random batches padded to 50 instead of length-bucketed, trimmed batches;
- ``unchunked``: the softmax losses computing all ``[P, N]`` logits at once
  (``loss.chunk_size=null``) instead of cache-sized blocks of positions with fused gradients;
- ``naive logits``: CCE computing ``[B, L, N]`` logits for every position, padding included,
  instead of ``[P, N]`` for the P real positions only;
- ``bf16`` (the other way round: an option, not a default): ``trainer.precision=bf16``, matrix
  products in bfloat16 with the log-softmax in float32 (``bf16 ×`` < 1 = faster than fp32).

Objects are built exactly as ``train.py`` builds them (``seqrec.runs.pipeline.build``).

    python scripts/bench.py                                   # LastFM and Beauty on CPU
    python scripts/bench.py --datasets beauty sports --device cuda --out outputs/bench-gpu
    python scripts/bench.py --datasets lastfm --models sasrec --losses cce --variants base bucketing_off
    python scripts/bench.py --datasets beauty --models sasrec --losses cce --repeats 3   # a noisy machine
    python scripts/bench.py --loss-family --datasets lastfm --models sasrec   # every loss, K = 1, 64, 256

A loss may carry its number of negatives: ``--losses sampled_softmax:256 gbce:64`` (``loss.num_negatives``).
``--loss-family`` (``make bench-losses``) times CE, CCE and every sampled loss at K = 1, 64, 256, base
variant only.

Seconds per epoch are the fastest of ``--epochs`` timed epochs (2) in each worker and of
``--repeats`` interleaved rounds over the variants (2), each in a fresh process. On a shared
machine noise only adds time, so the minimum is the best estimate of the code's own speed (the
README's "Speed" paragraph says how noisy the machine it was measured on is), hence several rounds.

Writes ``<out>/bench.csv`` and ``<out>/bench.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# variant → Hydra overrides; naive_logits swaps in the loss below by its _target_ (this file runs as
# __main__ in the worker), so every variant is built by seqrec.runs.pipeline.build from its config
VARIANTS = {
    "base": [],
    "bucketing_off": ["trainer.bucket_by_length=false"],
    "unchunked": ["loss.chunk_size=null"],
    "naive_logits": ["loss._target_=__main__.NaiveCCE"],
    "bf16": ["trainer.precision=bf16"],
}
SOFTMAX_LOSSES = ("ce", "cce")
# --loss-family: the losses with sampled negatives, each timed at these K
SAMPLED_LOSSES = ("bce", "bpr", "top1", "bpr_max", "top1_max", "sampled_softmax", "gbce")
FAMILY_K = (1, 64, 256)


def loss_overrides(spec: str) -> list[str]:
    """Hydra overrides of a ``--losses`` entry: ``name`` or ``name:K`` (K sampled negatives)."""
    name, _, k = spec.partition(":")
    return [f"loss={name}"] + ([f"loss.num_negatives={int(k)}"] if k else [])


def family_specs() -> list[str]:
    """``--loss-family``: CE, CCE and every sampled loss at each K of ``FAMILY_K``."""
    return [*SOFTMAX_LOSSES, *(f"{name}:{k}" for name in SAMPLED_LOSSES for k in FAMILY_K)]


def _naive_cce_class():
    """CCE the straightforward way (a :class:`seqrec.losses.CCE` with another forward): logits
    ``[B, L, N]`` for every position, then masked. Defined lazily: the parent process never imports torch."""
    import torch.nn.functional as F

    from seqrec.losses import CCE
    from seqrec.models.scoring import item_rows

    class NaiveCCE(CCE):
        name = "cce"

        def forward(self, hidden, targets, table, negatives=None):
            mask = targets != 0  # [B, L]
            logits = hidden @ table.T  # [B, L, N]
            classes = item_rows(targets).clamp(min=0).flatten()  # padding positions: any class, masked below
            per_pos = F.cross_entropy(logits.flatten(0, 1), classes, reduction="none")
            return (per_pos * mask.flatten()).sum() / mask.sum()

    return NaiveCCE


def __getattr__(name):  # `loss._target_=__main__.NaiveCCE` resolves here in the worker
    if name == "NaiveCCE":
        return _naive_cce_class()
    raise AttributeError(name)


def worker(args: argparse.Namespace) -> dict:
    """Build one configuration, time ``--epochs`` training epochs and one validation pass."""
    import torch
    from hydra import compose, initialize_config_dir

    from seqrec.runs.pipeline import build

    overrides = [
        f"dataset={args.dataset}",
        f"model={args.model}",
        *loss_overrides(args.loss),
        f"device={args.device}",
        "trainer.progress=false",
        f"data_dir={args.data_dir}",
        *VARIANTS[args.variant],
        *args.override,
    ]
    if args.threads:
        overrides.append(f"num_threads={args.threads}")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    exp = build(cfg)
    trainer = exp.trainer

    def sync():
        if exp.device.type == "cuda":
            torch.cuda.synchronize()

    trainer.train_epoch(0, max_batches=args.warmup)  # allocator, threads, kernels warm
    trainer.evaluate("valid")
    if exp.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    n_batches = -(-len(exp.split.train_users) // trainer.batch_size)
    epoch_seconds = []
    for epoch in range(1, args.epochs + 1):
        sync()
        start = time.perf_counter()
        trainer.train_epoch(epoch, max_batches=args.max_batches)
        sync()
        seconds = time.perf_counter() - start
        if args.max_batches and args.max_batches < n_batches:  # extrapolate a partial epoch
            seconds *= n_batches / args.max_batches
        epoch_seconds.append(seconds)
    sync()
    start = time.perf_counter()
    trainer.evaluate("valid")
    sync()
    eval_seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    if exp.device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    return {
        # the fastest epoch: noise on a shared machine only ever adds time
        "epoch_seconds": min(epoch_seconds),
        "epoch_seconds_mean": sum(epoch_seconds) / len(epoch_seconds),
        "eval_seconds": eval_seconds,
        "peak_mb": peak_mb,
        "batches": n_batches,
        "threads": torch.get_num_threads(),
    }


def run_worker(args: argparse.Namespace, dataset: str, model: str, loss: str, variant: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--dataset",
        dataset,
        "--model",
        model,
        "--loss",
        loss,
        "--variant",
        variant,
        "--device",
        args.device,
        "--epochs",
        str(args.epochs),
        "--warmup",
        str(args.warmup),
        "--data-dir",
        str(args.data_dir),
    ]
    if args.max_batches:
        cmd += ["--max-batches", str(args.max_batches)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    for item in args.override:
        cmd += ["--override", item]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"benchmark worker failed for {dataset}/{model}/{loss}/{variant}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(rows: list[dict]):
    """Per dataset × model × loss: base timings and the ratio of each variant to the base.

    With several rounds (``--repeats``) a cell is the fastest round (peak memory: the largest).
    Returns the raw frame (one row per worker run) and the summary table.
    """
    import pandas as pd

    frame = pd.DataFrame(rows)
    keys = ["dataset", "model", "loss", "variant"]
    best = (
        frame.groupby(keys, sort=False)
        .agg(
            epoch_seconds=("epoch_seconds", "min"),
            eval_seconds=("eval_seconds", "min"),
            peak_mb=("peak_mb", "max"),
            batches=("batches", "first"),
        )
        .reset_index()
    )
    base = best[best.variant == "base"].set_index(["dataset", "model", "loss"])
    table = base[["epoch_seconds", "eval_seconds", "peak_mb", "batches"]].copy()
    table["eval_share"] = table.eval_seconds / table.epoch_seconds
    for variant in VARIANTS:
        if variant == "base":
            continue
        other = best[best.variant == variant].set_index(["dataset", "model", "loss"])
        if len(other):
            table[f"{variant}_x"] = other.epoch_seconds / table.epoch_seconds
            table[f"{variant}_peak_mb"] = other.peak_mb
    return frame, table.reset_index()


def to_markdown(table, device: str) -> str:
    header = {
        "epoch_seconds": "s/epoch",
        "eval_seconds": "eval s",
        "eval_share": "eval / epoch",
        "peak_mb": "peak MB",
        "batches": "batches",
        "bucketing_off_x": "bucketing off ×",
        "unchunked_x": "unchunked ×",
        "naive_logits_x": "naive logits ×",
        "bucketing_off_peak_mb": "peak MB (bucketing off)",
        "unchunked_peak_mb": "peak MB (unchunked)",
        "naive_logits_peak_mb": "peak MB (naive)",
        "bf16_x": "bf16 ×",
        "bf16_peak_mb": "peak MB (bf16)",
    }
    import pandas as pd

    from seqrec.report.markdown import markdown_table

    cols = ["dataset", "model", "loss"] + [c for c in header if c in table.columns]
    shown = table[cols].copy()
    for c in cols[3:]:
        if pd.api.types.is_float_dtype(shown[c]):
            shown[c] = shown[c].map(lambda v: "" if v != v else f"{v:.2f}")
    return (
        f"Benchmark on {device}. `×` columns: seconds per epoch of the variant ÷ all optimisations on "
        "(> 1 means the optimisation is that many times faster).\n\n"
        f"{markdown_table(shown.rename(columns=header), left=3)}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["lastfm", "beauty"])
    parser.add_argument("--models", nargs="+", default=["gru4rec", "sasrec"])
    parser.add_argument(
        "--losses",
        nargs="+",
        default=["bce", "ce", "cce"],
        help="loss names, optionally with K negatives: sampled_softmax:256",
    )
    parser.add_argument(
        "--loss-family",
        action="store_true",
        help="time CE, CCE and every sampled loss at K = 1, 64, 256 (base variant only)",
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--epochs", type=int, default=2, help="timed training epochs per worker run; the fastest one counts"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="rounds over all variants of a configuration, interleaved (base, off, …, base, "
        "off, …); each cell is its fastest round. Use 3 or more on a shared machine",
    )
    parser.add_argument("--max-batches", type=int, default=None, help="time only this many batches, extrapolated")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up batches")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    parser.add_argument("--override", action="append", default=[], help="extra Hydra override, repeatable")
    # worker mode (internal)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--loss", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="base", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:  # a user error (e.g. missing data) is one paragraph, which the parent shows
        from seqrec.runs.cli import run_main

        return run_main(lambda: print(json.dumps(worker(args))))

    from rich.console import Console
    from rich.progress import track

    # imported before the first worker, so an import error does not wait for the whole benchmark
    from seqrec.atomic import atomic_write
    from seqrec.runs.outputs import write_csv

    if args.loss_family:
        args.losses, args.variants = family_specs(), ["base"]
    jobs = []
    for dataset in args.datasets:
        for model in args.models:
            for loss in args.losses:
                for _ in range(args.repeats):
                    for variant in args.variants:
                        if variant == "unchunked" and loss not in SOFTMAX_LOSSES:
                            continue
                        if variant == "naive_logits" and loss != "cce":
                            continue
                        jobs.append((dataset, model, loss, variant))
    rows = []
    for dataset, model, loss, variant in track(jobs, description="benchmarking", console=Console(stderr=True)):
        result = run_worker(args, dataset, model, loss, variant)
        rows.append(dict(dataset=dataset, model=model, loss=loss, variant=variant, **result))
    frame, table = summarise(rows)
    markdown = to_markdown(table, args.device)
    write_csv(args.out / "bench_raw.csv", frame)
    write_csv(args.out / "bench.csv", table)
    atomic_write(args.out / "bench.md", markdown + "\n")
    print(markdown)
    print(f"wrote {args.out / 'bench.csv'}, {args.out / 'bench.md'}, {args.out / 'bench_raw.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
