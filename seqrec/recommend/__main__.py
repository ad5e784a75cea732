"""Command line: top-k recommendations from a finished run.

    python -m seqrec.recommend --run <run folder> [--users all|<file>] [--as-of all|valid|test]
                               [--sequences <file.csv|.jsonl>] [--k 10] [--out recs.csv|.jsonl]
                               [--include-history] [--data-dir data] [--device cpu]

Writes one row per (user or sequence, rank): ``user_id`` (or ``sequence_id``), ``rank``,
``item_id``, ``score`` — to ``--out`` (atomically) or as CSV to stdout. Bad input prints one
paragraph on stderr and exits with status 1, leaving no output file; a reader that closes stdout
early (``| head``) ends it quietly with status 141, as it would ``cat``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import torch

from seqrec.devices import resolve_device
from seqrec.errors import SeqrecError
from seqrec.recommend.files import check_out_path, read_sequences, read_users, write_recommendations
from seqrec.recommend.run import AS_OF, load_run
from seqrec.runs.cli import positive_int, report_errors, stdout_pipe, thread_count

log = logging.getLogger("seqrec.recommend")


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`SeqrecError` (exit status 1, one paragraph) instead of exit 2."""

    def error(self, message: str):
        raise SeqrecError(f"{message}. Usage: {self.format_usage().strip().removeprefix('usage: ')}")


def _k(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k {text!r} is not a whole number (e.g. --k 10)") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"--k {k}: a list needs at least one item (e.g. --k 10)")
    return k


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    value = positive_int(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"--batch-size {text!r} must be auto or a whole number >= 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _Parser(
        prog="python -m seqrec.recommend",
        description="Top-k recommendations from a finished run, for its users or for new sequences.",
    )
    p.add_argument("--run", required=True, help="folder of a finished run (config.yaml, best.pt, metrics.json)")
    p.add_argument(
        "--users",
        default=None,
        help="'all' (default without --sequences) or a file of raw user ids, one per line "
        "(or a CSV with a user_id column, e.g. per_user_test.csv; - reads standard input)",
    )
    p.add_argument(
        "--as-of",
        default="all",
        choices=list(AS_OF),
        help="known users' input: all = whole sequence (default), test = the evaluation input s[:-1], valid = s[:-2]",
    )
    p.add_argument(
        "--sequences", default=None, help="CSV (sequence_id,item_id rows) or JSON Lines of raw item-id sequences"
    )
    p.add_argument("--k", type=_k, default=10, help="list length (default 10)")
    p.add_argument("--out", default=None, help="output file, .csv or .jsonl (default: CSV on stdout)")
    p.add_argument(
        "--include-history",
        action="store_true",
        help="allow items already in the sequence (default: excluded, as in evaluation)",
    )
    p.add_argument("--data-dir", default=None, help="datasets folder for known users (default: the run's)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1 or auto")
    p.add_argument(
        "--batch-size",
        type=_batch_size,
        default=None,
        help="sequences scored at once (default: the run's eval.batch_size, auto)",
    )
    p.add_argument("--num-threads", type=thread_count, default=None, help="torch CPU threads (>= 1)")
    args = p.parse_args(argv)
    if args.sequences is not None and args.users is not None:
        p.error("give --users or --sequences, not both")
    if args.sequences is not None and args.as_of != "all":
        p.error("--as-of applies to known users (--users), not to --sequences")
    if args.sequences is not None and args.data_dir is not None:
        p.error(
            "--data-dir applies to known users (--users), whose histories come from the dataset; "
            "--sequences brings its own"
        )
    return args


def recommend(args: argparse.Namespace):
    """Load the run, read the input, compute the lists; returns the frame. Raises SeqrecError."""
    if args.out is not None:
        check_out_path(args.out)  # before any work
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    sequences = read_sequences(args.sequences) if args.sequences is not None else None
    users = read_users(args.users) if args.users not in (None, "all") else None

    resolve_device(args.device, "--device ")  # a bad or absent device named as this command spells it
    run = load_run(args.run, device=args.device, data_dir=args.data_dir, batch_size=args.batch_size)
    if sequences is None:
        run.dataset()  # known users' sequences: read before the clock starts
    start = time.perf_counter()
    if sequences is not None:
        frame = run.recommend(sequences, k=args.k, include_history=args.include_history)
        what = "sequences"
    else:
        frame = run.recommend_users(users, k=args.k, as_of=args.as_of, include_history=args.include_history)
        what = "users"
    seconds = time.perf_counter() - start
    n = frame.iloc[:, 0].nunique()
    log.info("top-%d for %d %s in %.2f s (%.0f %s/s)", args.k, n, what, seconds, n / max(seconds, 1e-9), what)
    return frame


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    with report_errors():
        args = parse_args(argv)
        frame = recommend(args)
        if args.out is None:
            with stdout_pipe():
                frame.to_csv(sys.stdout, index=False)
        else:
            log.info("wrote %d rows to %s", len(frame), write_recommendations(frame, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
