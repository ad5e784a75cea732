"""Shared test helpers: config composition and access to the real benchmark data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose ``conf/config.yaml`` with Hydra overrides, outside of ``@hydra.main``."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [])


def tiny_config(tmp_path: Path, out: Path, *overrides: str, users: int = 30, per_user: int = 8) -> DictConfig:
    """A run config on a small synthetic log (``users`` × ``per_user`` interactions over 40 items,
    written into ``tmp_path/log.csv``): one epoch takes about a second, no data files needed."""
    rows = [f"u{u},i{(u * 7 + t) % 40},{t}" for u in range(users) for t in range(per_user)]
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    return compose_config(
        [
            f"data_dir={tmp_path / 'data'}",
            f"output_dir={out}",
            "dataset=custom",
            f"dataset.path={tmp_path / 'log.csv'}",
            "dataset.kcore=0",
            "trainer.progress=false",
            "device=cpu",
            *overrides,
        ]
    )


def find_shared_data() -> Path | None:
    """The read-only benchmark data folder, or None when this machine has none."""
    from seqrec.data.fetch import shared_data_dir

    return shared_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared benchmark data; skips the test when it is not on this machine."""
    path = find_shared_data()
    if path is None or not (path / "s3rec" / "LastFM.txt").exists():
        pytest.skip("benchmark data not found: run `make data` or set SEQREC_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def lastfm_data_dir(tmp_path_factory, shared_data) -> Path:
    """A data_dir holding LastFM (copied from the shared folder by the project's own fetch)."""
    from seqrec.data.fetch import fetch_dataset

    data_dir = tmp_path_factory.mktemp("data")
    fetch_dataset(compose_config(["dataset=lastfm"]).dataset, data_dir)
    return data_dir
