"""The loss family wired in: every loss × sampler × positions composes and builds, names its family,
the `experiment=losses` sweep covers each loss in both families once, and short LastFM runs
train with each new loss (CE = CCE at the last position, to the last digit)."""

from __future__ import annotations

import itertools

import pytest
from conftest import compose_config
from hydra.utils import instantiate
from test_analysis import sweep_jobs

from seqrec.losses import BCE, BPR, CCE, CE, GBCE, TOP1, BPRMax, SampledSoftmax, TOP1Max
from seqrec.losses.samplers import UniformSampler
from seqrec.losses.samplers_extra import InBatchSampler, PopularitySampler

NEW = {
    "bpr": (BPR, 1),
    "top1": (TOP1, 1),
    "bpr_max": (BPRMax, 64),
    "top1_max": (TOP1Max, 64),
    "sampled_softmax": (SampledSoftmax, 256),
    "gbce": (GBCE, 256),
}
SAMPLERS = {"uniform": UniformSampler, "popularity": PopularitySampler, "in_batch": InBatchSampler}


@pytest.mark.parametrize("loss,sampler,positions", list(itertools.product(NEW, SAMPLERS, ["all", "last"])))
def test_every_loss_sampler_and_family_builds(loss, sampler, positions):
    cfg = compose_config([f"loss={loss}", f"loss/sampler={sampler}", f"loss.positions={positions}"])
    built = instantiate(cfg.loss)
    cls, k = NEW[loss]
    assert type(built) is cls and built.num_negatives == k and built.positions == positions
    assert type(built.sampler) is SAMPLERS[sampler]
    variant = loss if sampler == "uniform" else f"{loss}-{sampler}"  # a non-default sampler is named
    assert built.name == (variant if positions == "all" else f"{variant}-last")


@pytest.mark.parametrize(
    "loss,positions,name",
    [
        ("cce", "all", "cce"),
        ("cce", "last", "ce"),
        ("ce", "last", "ce"),
        ("ce", "all", "cce"),
        ("bce", "all", "bce"),
        ("bce", "last", "bce-last"),
    ],
)
def test_baselines_take_positions_and_keep_their_names(loss, positions, name):
    built = instantiate(compose_config([f"loss={loss}", f"loss.positions={positions}"]).loss)
    assert isinstance(built, (CCE, BCE)) and built.positions == positions and built.name == name
    assert isinstance(instantiate(compose_config(["loss=ce"]).loss), CE)


@pytest.mark.parametrize(
    "overrides,name",
    [
        ([], "sampled_softmax"),
        (["loss.logq=true"], "sampled_softmax-logq"),
        (
            ["loss.num_negatives=64", "loss/sampler=popularity", "loss.logq=true", "loss.positions=last"],
            "sampled_softmax-k64-popularity-logq-last",
        ),
        (["loss=bce", "loss.num_negatives=256"], "bce-k256"),
        (["loss=bce", "loss.num_negatives=1"], "bce"),
        (["loss=gbce", "loss/sampler=in_batch"], "gbce-in_batch"),
    ],
)
def test_variants_of_a_loss_get_their_own_names(overrides, name):
    # two runs differing in K, sampler or logQ must not share a name (reports would merge them)
    cfg = compose_config(["loss=sampled_softmax", *overrides])
    assert instantiate(cfg.loss).name == name


def test_loss_options_are_config_keys():
    cfg = compose_config(["loss=sampled_softmax", "loss.logq=true", "loss.num_negatives=64", "loss/sampler=popularity"])
    assert instantiate(cfg.loss).logq is True and instantiate(cfg.loss).num_negatives == 64
    assert instantiate(compose_config(["loss=gbce", "loss.t=0.5"]).loss).t == 0.5
    assert instantiate(compose_config(["loss=bpr_max", "loss.bpreg=0.0"]).loss).bpreg == 0.0


def test_losses_experiment_sweeps_every_loss_in_both_families_once():
    jobs = sweep_jobs(["experiment=losses"])
    keys = {(j["dataset"], j["model"], j["loss"], j["loss.positions"], j["seed"]) for j in jobs}
    assert len(jobs) == len(keys) == 16
    assert {k[2] for k in keys} == {"bce", "cce", *NEW} and {k[3] for k in keys} == {"all", "last"}
    assert {(k[0], k[1], k[4]) for k in keys} == {("lastfm", "sasrec", "42")}
    assert len(sweep_jobs(["experiment=losses", "seeds=3", "loss=bpr,gbce"])) == 2 * 2 * 3


@pytest.mark.realdata
@pytest.mark.parametrize(
    "overrides",
    [
        ["loss=bpr_max", "loss/sampler=popularity"],
        ["loss=top1", "loss.positions=last", "loss/sampler=in_batch"],
        ["loss=sampled_softmax", "loss/sampler=popularity", "loss.logq=true", "loss.num_negatives=64"],
        ["loss=gbce", "loss.positions=last", "loss.num_negatives=64"],
    ],
    ids=lambda o: " ".join(o),
)
def test_new_losses_train_on_lastfm(tmp_path, lastfm_data_dir, overrides):
    from test_pipeline import small_run

    cfg, metrics = small_run(tmp_path, lastfm_data_dir, "trainer.max_epochs=1", *overrides)
    assert metrics["loss"] == instantiate(cfg.loss).name
    assert 0.0 <= metrics["test/ndcg@10"] <= 1.0 and metrics["epochs_run"] == 1


@pytest.mark.realdata
def test_cce_at_the_last_position_is_ce(tmp_path, lastfm_data_dir):
    from test_pipeline import small_run

    _, ce = small_run(tmp_path / "ce", lastfm_data_dir, "loss=ce", "trainer.max_epochs=1")
    _, cce_last = small_run(
        tmp_path / "cce", lastfm_data_dir, "loss=cce", "loss.positions=last", "trainer.max_epochs=1"
    )
    assert ce["loss"] == cce_last["loss"] == "ce"
    assert all(ce[k] == cce_last[k] for k in ce if k.startswith(("valid/", "test/")))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["loss=bpr", "loss.num_negatives=0"], r"invalid loss.num_negatives=0: bpr needs num_negatives >= 1"),
        (["loss=bpr_max", "loss.bpreg=-1"], r"invalid loss.bpreg=-1: bpreg=-1 is not valid"),
        (["loss=gbce", "loss.t=2"], r"invalid loss.t=2: t=2 is not valid"),
        (["loss=cce", "loss.chunk_size=big"], r"loss.chunk_size='big' is not valid: it must be a whole number"),
        (
            ["loss=sampled_softmax", "loss.positions=first"],
            r"loss.positions='first' is not valid: it must be one of all, last",
        ),
    ],
)
def test_a_losss_value_error_becomes_one_paragraph_naming_the_option(overrides, message):
    # library code raises ValueError; the config layer names the option and where to change it
    from seqrec.config.schema import build_object, validate_config
    from seqrec.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        build_object(validate_config(compose_config(overrides)).loss, "loss")
