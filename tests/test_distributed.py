"""Data-parallel training (seqrec.training.distributed): the sharding and loss-factor math without processes,
the one-process no-op path, and real ``torchrun --nproc_per_node=2`` runs (gloo, slow) that must
equal the one-process run with the same global batch, write one folder from rank 0, and resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, compose_config

from seqrec.runs.pipeline import run
from seqrec.training import distributed as ddp

METRIC_KEYS = [f"{split}/{m}@{k}" for split in ("valid", "test") for m in ("hr", "ndcg") for k in (5, 10, 20)]


# -- the math, without processes ---------------------------------------------------------------
def position_mean_loss(hidden, table, targets):
    """A loss that is a mean over target positions (what every seqrec loss is): CE over items."""
    mask = targets != 0
    return F.cross_entropy(hidden[mask] @ table.T, targets[mask] - 1)


@pytest.mark.parametrize("batch,world", [(7, 2), (6, 3), (1, 2), (5, 4)])
def test_sharded_scaled_steps_average_to_the_one_process_step(batch, world):
    torch.manual_seed(0)
    n_items, width, d = 11, 5, 4
    lengths = torch.randint(1, width + 1, (batch,))  # [B] positions per row
    targets = torch.randint(1, n_items + 1, (batch, width))
    targets[torch.arange(width) < (width - lengths)[:, None]] = 0  # left padding
    positions = (targets != 0).sum(1)
    hidden = torch.randn(batch, width, d)
    table = torch.randn(n_items, d, requires_grad=True)
    idx = torch.arange(batch)

    position_mean_loss(hidden, table, targets).backward()
    one_process = table.grad.clone()

    grads, seen = [], []
    for r in range(world):
        rows, factor = ddp.shard_rows(idx, positions, r, world)
        table.grad = None
        (position_mean_loss(hidden[rows], table, targets[rows]) * factor).backward()
        grads.append(table.grad.clone())
        seen.extend(rows.tolist() if factor else [])
    assert sorted(seen) == idx.tolist()  # every row on exactly one rank (a dummy row has factor 0)
    torch.testing.assert_close(torch.stack(grads).mean(0), one_process)  # what DDP's average gives


def test_shard_rows_takes_every_w_th_row_and_weighs_by_positions():
    idx = torch.tensor([10, 11, 12, 13, 14])
    positions = torch.zeros(20, dtype=torch.long)
    positions[idx] = torch.tensor([1, 2, 3, 4, 10])  # P = 20
    rows, factor = ddp.shard_rows(idx, positions, 1, 2)
    assert rows.tolist() == [11, 13] and factor == pytest.approx((2 + 4) * 2 / 20)
    rows, factor = ddp.shard_rows(idx, positions, 0, 2)
    assert rows.tolist() == [10, 12, 14] and factor == pytest.approx((1 + 3 + 10) * 2 / 20)
    assert ddp.shard_rows(idx, positions, 0, 1) == (idx, 1.0)


def test_one_process_is_a_no_op():
    assert not ddp.init_from_env("cpu")  # no torchrun variables in the test process
    assert (ddp.rank(), ddp.world_size(), ddp.is_main(), ddp.seed_parts()) == (0, 1, True, ())
    model = torch.nn.Linear(2, 2)
    assert ddp.wrap(model) is model
    t = torch.arange(3)
    assert ddp.gather(t)[0] is t and ddp.broadcast_object({"a": 1}) == {"a": 1} and ddp.all_mean(t) is t
    ranks = ddp.sharded_ranks(lambda users: users * 10, torch.tensor([3, 1, 2]))
    assert ranks.tolist() == [0, 10, 20]
    rng = {"torch": torch.get_rng_state()}
    assert ddp.gather_rng(rng) is rng and ddp.rank_rng(rng) is rng and ddp.on_main(lambda: 5) == 5
    assert ddp.rank_rng({**rng, "ranks": [rng, {"torch": None}]}) is rng  # rank 0's of a 2-process run


def test_slurm_steps_become_torchrun_variables():
    env = {
        "SLURM_NTASKS": "8",
        "SLURM_PROCID": "5",
        "SLURM_LOCALID": "1",
        "SLURM_STEP_ID": "0",
        "SLURM_JOB_NODELIST": "gpu[07-10]",
        "SLURM_JOB_ID": "123456",
    }
    out = ddp.slurm_env(env, lambda nodes: ["gpu07", "gpu08", "gpu09", "gpu10"])
    assert out == {
        "RANK": "5",
        "WORLD_SIZE": "8",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "gpu07",
        "MASTER_PORT": str(20000 + 123456 % 20000),
    }
    assert ddp.slurm_env({**env, "SLURM_NTASKS": "1"}, lambda nodes: []) == {}
    assert ddp.slurm_env({k: v for k, v in env.items() if k != "SLURM_STEP_ID"}, lambda nodes: []) == {}


# -- real processes (torchrun, gloo) ---------------------------------------------------------
# no dropout and no sampled negatives (CCE): then 1 and 2 processes compute the same steps up to
# floating-point order, so the per-user ranks must be identical
SMALL = [
    "dataset.max_users=120",
    "trainer.max_epochs=2",
    "trainer.batch_size=16",
    "trainer.progress=false",
    "device=cpu",
    "num_threads=1",
    "model.dropout=0.0",
    "optimizer.lr=0.01",
]


def torchrun(data_dir, cwd, *overrides, env=None, nproc=2):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(ROOT / "tests" / "ddp_entry.py"),
        f"data_dir={data_dir}",
        *SMALL,
        *overrides,
    ]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})},
    )


def read_run(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    return metrics, pd.read_csv(folder / "per_user_test.csv"), pd.read_csv(folder / "epochs.csv")


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory, lastfm_data_dir):
    """The one-process run (in-process) and the two-process run (torchrun, Hydra's timestamped folders)."""
    base = tmp_path_factory.mktemp("ddp")
    one = base / "one"
    run(compose_config([f"data_dir={lastfm_data_dir}", f"output_dir={one}", *SMALL]))
    done = torchrun(lastfm_data_dir, base)
    assert done.returncode == 0, done.stderr[-3000:]
    return one, base, done


@pytest.mark.slow
@pytest.mark.realdata
def test_two_processes_equal_one_process_and_rank_0_alone_writes(one_and_two):
    one, base, done = one_and_two
    folders = [p for p in (base / "outputs").rglob("*") if p.is_dir() and p.parent.name == "sasrec-cce"]
    assert len(folders) == 1, folders  # rank 1's own Hydra folder is gone
    two = folders[0]
    assert {p.name for p in two.iterdir()} == {p.name for p in one.iterdir()} | {".hydra", "train.log"}
    assert done.stdout.count("results in") == 1 and "error" not in done.stderr.lower()
    assert sum(" epoch 2 " in line for line in (two / "train.log").read_text().splitlines()) == 1

    (m1, u1, e1), (m2, u2, e2) = read_run(one), read_run(two)
    assert (m1["world_size"], m2["world_size"]) == (1, 2)
    for key in METRIC_KEYS:
        assert m2[key] == pytest.approx(m1[key], abs=1e-4), key
    assert m2["best_epoch"] == m1["best_epoch"] == 2
    assert (u1["rank"] == u2["rank"]).all()  # same weights up to rounding: the same integer ranks
    assert e2["train_loss"].tolist() == pytest.approx(e1["train_loss"].tolist(), rel=1e-5)


@pytest.mark.slow
@pytest.mark.realdata
def test_two_process_run_interrupted_on_one_rank_resumes_with_two_or_one(one_and_two, lastfm_data_dir, tmp_path):
    one, base, _ = one_and_two
    two = next(p for p in (base / "outputs").rglob("metrics.json")).parent
    cut = tmp_path / "cut"
    # 120 users / 16 = 8 batches per epoch: rank 1 alone gets SIGTERM in its 11th batch (epoch 2)
    stopped = torchrun(lastfm_data_dir, tmp_path, f"hydra.run.dir={cut}", env={"SEQREC_TEST_SIGTERM": "1:11"})
    assert stopped.returncode != 0 and f"resume={cut}" in stopped.stderr, stopped.stderr[-3000:]
    assert not (cut / "metrics.json").exists()
    loop = torch.load(cut / "last.pt", weights_only=True)["loop"]
    assert (loop["epoch"], loop["batches_done"], len(loop["rng"]["ranks"])) == (1, 3, 2)  # both stopped alike

    copy = tmp_path / "copy"
    shutil.copytree(cut, copy)
    resumed = torchrun(lastfm_data_dir, tmp_path, f"resume={cut}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (m2, u2, e2), (mc, uc, ec) = read_run(two), read_run(cut)
    assert {k: mc[k] for k in METRIC_KEYS} == {k: m2[k] for k in METRIC_KEYS}
    assert (uc["rank"] == u2["rank"]).all()
    assert ec["train_loss"].tolist() == e2["train_loss"].tolist()

    # the same checkpoint continued by one process: the unwrapped model, the same steps
    run(
        compose_config(
            [f"data_dir={lastfm_data_dir}", f"output_dir={tmp_path / 'unused'}", f"resume={copy}", "num_threads=1"]
        ),
        overrides=[f"resume={copy}"],
    )
    m1, u1, _ = read_run(one)
    mo, uo, _ = read_run(copy)
    for key in METRIC_KEYS:
        assert mo[key] == pytest.approx(m1[key], abs=1e-4), key
    assert (uo["rank"] == u1["rank"]).all()


def test_a_non_zero_ranks_own_sweep_folder_goes_when_it_holds_nothing_else(tmp_path):
    # torchrun -m: every rank's Hydra makes a sweep folder (its own timestamp); only rank 0's is used
    from seqrec.runs.rundir import _remove_own_sweep_dir

    multirun = tmp_path / "outputs" / "multirun"
    shared = multirun / "t0" / "lastfm" / "sasrec-cce" / "seed42"
    shared.mkdir(parents=True)
    (multirun / "t0" / "multirun.yaml").write_text("x")
    own_sweep = multirun / "t1"
    (own_sweep / "lastfm" / "sasrec-cce").mkdir(parents=True)  # the rank's run folder was removed already
    (own_sweep / "multirun.yaml").write_text("x")
    _remove_own_sweep_dir(own_sweep / "lastfm" / "sasrec-cce", shared)
    assert not own_sweep.exists() and (multirun / "t0" / "multirun.yaml").is_file() and shared.is_dir()
    # a folder that holds anything else (another job's results) is kept
    (own_sweep / "other-job").mkdir(parents=True)
    (own_sweep / "multirun.yaml").write_text("x")
    _remove_own_sweep_dir(own_sweep, shared)
    assert (own_sweep / "other-job").is_dir() and (own_sweep / "multirun.yaml").is_file()
    # a fixed sweep folder shared with rank 0 is never touched
    _remove_own_sweep_dir(multirun / "t0", shared)
    assert (multirun / "t0" / "multirun.yaml").is_file()


def test_launched_processes_reads_torchrun_and_slurm_steps():
    assert ddp.launched_processes({}) == 1 and ddp.launched_processes({"WORLD_SIZE": "4"}) == 4
    step = {"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_STEP_ID": "0"}
    assert ddp.launched_processes(step) == 2
    assert ddp.launched_processes({**step, "SLURM_STEP_ID": "0", "SLURM_NTASKS": "1"}) == 1
    assert ddp.launched_processes({k: v for k, v in step.items() if k != "SLURM_STEP_ID"}) == 1  # sbatch, no step
