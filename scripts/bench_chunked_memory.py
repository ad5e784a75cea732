"""Peak memory of one CCE training step, chunked vs unchunked full-catalogue softmax.

CCE (Eq. 26 of Li et al., AAAI 2023) scores every non-padding position against every item, so
the unchunked loss holds P x N logits (P = batch x real positions). This script builds a synthetic
catalogue, runs one step (forward, backward, Adam on an nn.Embedding item table tied as the
prediction layer) for each variant in its own subprocess, so that peaks do not mix, and prints
peak memory and time. On CPU the peak is the process's peak RSS (``ru_maxrss``); on CUDA it is
``torch.cuda.max_memory_allocated``. A variant whose estimated extra memory exceeds ``--max-gb``
is not run; its estimate is printed instead.

    python scripts/bench_chunked_memory.py                       # 1M items, CPU
    python scripts/bench_chunked_memory.py --items 100000        # small enough to run both
    python scripts/bench_chunked_memory.py --device cuda --max-gb 120
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

MB = 2**20
GB = 2**30
VARIANTS = ("chunked", "unchunked")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.worker:
        print(json.dumps(_one_step(args)))
        return 0
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("--device cuda was asked for but torch sees no CUDA device; use --device cpu.", file=sys.stderr)
            return 1

    n_rows = args.batch * args.real
    table_mb = (args.items + 1) * args.dim * 4 / MB
    print(
        f"items={args.items:,}  P=batch x real={args.batch} x {args.real}={n_rows:,}  dim={args.dim}  "
        f"chunk={args.chunk:,}  device={args.device}  budget={args.max_gb:g} GB"
    )
    rows = []
    for variant in VARIANTS:
        chunk = args.chunk if variant == "chunked" else None
        estimate = _estimated_extra_bytes(n_rows, args.items, args.dim, chunk)
        row = dict(variant=variant, estimate_mb=estimate / MB, table_mb=table_mb)
        if estimate > args.max_gb * GB:
            row["note"] = f"not run: estimated {estimate / GB:.1f} GB > --max-gb {args.max_gb:g}"
        else:
            row.update(_run_worker(argv if argv is not None else sys.argv[1:], variant))
        rows.append(row)
    _print_table(rows)
    print(
        "extra = peak minus the peak before the step (torch, item table and model already allocated); "
        "estimate = 3 x item table (grad, two Adam moments) + logit buffers: 3 x P x N x 4 B unchunked, "
        "chunk x N x 4 B + a second item-table-sized gradient buffer chunked."
    )
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="catalogue size N (padding id 0 comes on top)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=50, help="padded sequence length L")
    parser.add_argument("--real", type=int, default=10, help="non-padding positions per sequence")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=64, help="positions per block for the chunked variant")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--max-gb", type=float, default=12.0, help="do not run a variant whose estimated extra memory exceeds this"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)  # internal: run one variant
    args = parser.parse_args(argv)
    if not 0 < args.real <= args.seq_len:
        parser.error(f"--real must be in [1, --seq-len={args.seq_len}], got {args.real}")
    return args


def _estimated_extra_bytes(n_rows: int, n_items: int, dim: int, chunk: int | None) -> int:
    """Memory a step adds on top of the item table: its grad and Adam moments, plus logit buffers.

    The unchunked loss keeps about three P x N float32 buffers alive at its peak (logits,
    log-softmax saved for backward, its gradient); the chunked one works on a single chunk x N
    block of positions in place and keeps the [N, d] weight gradient it computes in the forward
    pass until backward.
    """
    table = (n_items + 1) * dim * 4
    if chunk is None:
        return 3 * table + 3 * n_rows * n_items * 4
    return 4 * table + min(chunk, n_rows) * n_items * 4


def _run_worker(argv: list[str], variant: str) -> dict:
    """One variant in a fresh interpreter, so that its peak RSS is its own."""
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--worker", variant]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        reason = "killed (out of memory?)" if result.returncode < 0 else f"exit {result.returncode}"
        tail = result.stderr.strip().splitlines()[-1:] or [""]
        return dict(note=f"failed: {reason} {tail[0]}".strip())
    return json.loads(result.stdout.strip().splitlines()[-1])


def _one_step(args: argparse.Namespace) -> dict:
    import torch
    from torch import nn

    # Run from a checkout without installing: make `seqrec` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from seqrec.losses.chunked import chunked_cross_entropy
    from seqrec.models.scoring import item_rows, tied_table

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    emb = nn.Embedding(args.items + 1, args.dim, padding_idx=0, device=device)
    proj = nn.Linear(args.dim, args.dim, device=device)  # stands in for the sequence encoder
    optimizer = torch.optim.Adam([*emb.parameters(), *proj.parameters()], lr=1e-3)

    # Left-padded sequences with `real` items each; targets are the next items.
    seq = torch.randint(1, args.items + 1, (args.batch, args.seq_len + 1), device=device)  # [B, L+1]
    seq[:, : args.seq_len - args.real] = 0
    inputs, targets = seq[:, :-1], seq[:, 1:]  # [B, L]
    mask = inputs != 0  # [B, L], P = B * real positions
    chunk = args.chunk if args.worker == "chunked" else None

    before = _peak_bytes(device, reset=True)
    start = time.perf_counter()
    hidden = proj(emb(inputs))  # [B, L, d]
    loss = chunked_cross_entropy(hidden[mask], tied_table(emb), item_rows(targets[mask]), chunk)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = _peak_bytes(device)
    return dict(peak_mb=peak / MB, extra_mb=(peak - before) / MB, seconds=seconds, loss=loss.item())


def _peak_bytes(device, reset: bool = False) -> int:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize()
        if reset:
            current = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            return current
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _print_table(rows: list[dict]) -> None:
    columns = ("peak MB", 9), ("extra MB", 9), ("est. extra MB", 14), ("item table MB", 14), ("seconds", 8)
    header = f"{'variant':<10} " + " ".join(f"{name:>{width}}" for name, width in columns) + "  note"
    print(header)
    print("-" * len(header))
    for row in rows:
        peak = f"{row['peak_mb']:.0f}" if "peak_mb" in row else "-"
        extra = f"{row['extra_mb']:.0f}" if "extra_mb" in row else "-"
        seconds = f"{row['seconds']:.2f}" if "seconds" in row else "-"
        note = row.get("note", f"loss {row['loss']:.4f}" if "loss" in row else "")
        estimate, table = f"{row['estimate_mb']:.0f}", f"{row['table_mb']:.0f}"
        print(f"{row['variant']:<10} {peak:>9} {extra:>9} {estimate:>14} {table:>14} {seconds:>8}  {note}")


if __name__ == "__main__":
    sys.exit(main())
