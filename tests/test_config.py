"""Every combination of the user-facing config groups composes and builds."""

import itertools

import pytest
import torch
from hydra.utils import instantiate

from conftest import CONF, compose_config

GROUPS = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml")) for g in ("dataset", "model", "loss", "optimizer")}


def test_groups_have_the_documented_options():
    assert {"beauty", "sports", "toys", "yelp", "lastfm", "ml100k"} <= set(GROUPS["dataset"])
    assert {"gru4rec", "sasrec"} <= set(GROUPS["model"])
    assert {"bce", "ce", "cce"} <= set(GROUPS["loss"])
    assert "adam" in GROUPS["optimizer"]


def test_defaults_follow_the_paper():
    cfg = compose_config()
    assert (cfg.dataset.name, cfg.model._target_, cfg.loss._target_) == ("lastfm", "seqrec.models.SASRec", "seqrec.losses.CCE")
    assert cfg.dataset.max_len == 50 and cfg.seed == 42
    assert cfg.trainer.batch_size == 256 and cfg.trainer.max_epochs == 150
    assert cfg.trainer.patience == 10 and cfg.trainer.monitor == "valid/ndcg@20"
    assert cfg.optimizer.lr == 1e-3 and list(cfg.optimizer.betas) == [0.9, 0.999] and cfg.optimizer.weight_decay == 0
    assert cfg.eval.mask_history is True


@pytest.mark.parametrize(
    "dataset,model,loss,optimizer",
    list(itertools.product(GROUPS["dataset"], GROUPS["model"], GROUPS["loss"], GROUPS["optimizer"])),
)
def test_every_combination_composes_and_builds(dataset, model, loss, optimizer):
    cfg = compose_config([f"dataset={dataset}", f"model={model}", f"loss={loss}", f"optimizer={optimizer}"])
    net = instantiate(cfg.model, n_items=11, max_len=cfg.dataset.max_len)
    out = net(torch.tensor([[0, 1, 2, 3]]))
    assert out.shape[:2] == (1, 4)
    assert instantiate(cfg.loss).name == loss
    assert isinstance(instantiate(cfg.optimizer, params=net.parameters()), torch.optim.Optimizer)
