"""The typed config: every combination of the config groups composes, validates and builds; every
bad value or unread key, in every group, is one ConfigError paragraph before anything is built."""

import inspect
import itertools
from dataclasses import dataclass, fields
from typing import Annotated, Literal

import pytest
import torch
from conftest import CONF, compose_config
from hydra.utils import get_object
from omegaconf import OmegaConf

from seqrec.config.schema import SUPPLIED, build_object, validate_config
from seqrec.errors import ConfigError
from seqrec.models.s3rec_stage import PretrainConfig
from seqrec.options import NonNegativeInt, Pattern, PositiveInt, Probability, Range, accepts, check_options

GROUPS = {g: sorted(p.stem for p in (CONF / g).glob("*.yaml")) for g in ("dataset", "model", "loss", "optimizer")}


def test_groups_have_the_documented_options():
    assert {"beauty", "sports", "toys", "yelp", "lastfm", "ml100k"} <= set(GROUPS["dataset"])
    assert {"gru4rec", "sasrec"} <= set(GROUPS["model"])
    assert {"bce", "ce", "cce"} <= set(GROUPS["loss"])
    assert "adam" in GROUPS["optimizer"]


def test_defaults_follow_the_paper():
    cfg = compose_config()
    assert (cfg.dataset.name, cfg.model._target_, cfg.loss._target_) == (
        "lastfm",
        "seqrec.models.SASRec",
        "seqrec.losses.CCE",
    )
    assert cfg.dataset.max_len == 50 and cfg.seed == 42
    assert cfg.trainer.batch_size == 256 and cfg.trainer.max_epochs == 150
    assert cfg.trainer.patience == 10 and cfg.trainer.monitor == "valid/ndcg@20"
    assert cfg.optimizer.lr == 1e-3 and list(cfg.optimizer.betas) == [0.9, 0.999] and cfg.optimizer.weight_decay == 0
    assert cfg.eval.mask_history is True


@pytest.mark.parametrize(
    "dataset,model,loss,optimizer",
    list(itertools.product(GROUPS["dataset"], GROUPS["model"], GROUPS["loss"], GROUPS["optimizer"])),
)
def test_every_combination_validates_and_builds(dataset, model, loss, optimizer):
    extra = ["dataset.path=/x/log.csv"] if dataset == "custom" else []
    checked = validate_config(
        compose_config([f"dataset={dataset}", f"model={model}", f"loss={loss}", f"optimizer={optimizer}", *extra])
    )
    assert checked.dataset.name == dataset
    assert (checked.pretraining is not None) == (model == "s3rec")
    sizes = {"n_items": 11, "max_len": checked.dataset.max_len}
    net = build_object(checked.model, "model", **sizes)
    out = net(torch.tensor([[0, 1, 2, 3]]))
    assert out.shape[:2] == (1, 4)
    assert build_object(checked.loss, "loss").name == loss
    assert isinstance(build_object(checked.optimizer, "optimizer", params=net.parameters()), torch.optim.Optimizer)


def yaml_values(path):
    """A group file's plain values (interpolations such as ${eval.batch_size} left out)."""
    node = OmegaConf.load(path)
    return {k: OmegaConf.to_container(node)[k] for k in node if not OmegaConf.is_interpolation(node, k)}


GROUP_FILES = sorted(p for g in ("model", "loss", "optimizer", "trainer") for p in (CONF / g).glob("*.yaml"))
# a variant names another file of its group in its defaults list and sets its own values on top
# (model/bsarec_causal); a loss's defaults name its sampler sub-group, which is no variant
VARIANTS = [
    p
    for p in GROUP_FILES
    if any(isinstance(d, str) and (p.parent / f"{d}.yaml").is_file() for d in OmegaConf.load(p).get("defaults", []))
]


@pytest.mark.parametrize(
    "path", [p for p in GROUP_FILES if p not in VARIANTS], ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_python_defaults_equal_the_yaml_values(path):
    # conf/ holds the values a run uses; a Python default (for library use) must not disagree
    values = yaml_values(path)
    params = inspect.signature(get_object(values.pop("_target_"))).parameters
    compared = 0
    for key, value in values.items():
        # a None default means "the class decides" (e.g. CCE's positions): nothing to disagree with
        if key in params and params[key].default not in (inspect.Parameter.empty, None):
            default = params[key].default
            assert (list(default) if isinstance(default, tuple) else default) == value, key
            compared += 1
    assert compared > 0


def test_a_variant_is_its_base_with_its_own_values():
    assert [p.stem for p in VARIANTS] == ["bsarec_causal"]
    base, variant = (compose_config([f"model={m}"]).model for m in ("bsarec", "bsarec_causal"))
    own = {k: v for k, v in OmegaConf.to_container(OmegaConf.load(CONF / "model" / "bsarec_causal.yaml")).items()}
    own.pop("defaults")
    assert own == {"causal_filter": True}
    assert OmegaConf.to_container(variant) == {**OmegaConf.to_container(base), **own}


def test_pretrain_recipe_defaults_equal_the_s3rec_yaml():
    pretrain = yaml_values(CONF / "model" / "s3rec.yaml")["pretrain"]
    defaults = PretrainConfig()
    plain_keys = [f.name for f in fields(PretrainConfig) if not str(pretrain[f.name]).startswith("${")]
    assert len(plain_keys) == len(fields(PretrainConfig)) - 2  # epochs and dir come from elsewhere
    assert all(getattr(defaults, key) == pretrain[key] for key in plain_keys)


# -- every kind of bad value, in every group: one paragraph, nothing built --------------------------
BAD = [
    # bool: a string is never a bool (these used to run as if true)
    ("eval.mask_history=no", r"eval.mask_history='no' is not valid: it must be true or false\."),
    ("model=s3rec model.pretrained=no", r"model.pretrained='no' is not valid: it must be true or false"),
    ("trainer.bucket_by_length=nope", r"trainer.bucket_by_length='nope' is not valid: it must be true or false"),
    ("trainer.progress=1", r"trainer.progress=1 is not valid: it must be true or false"),
    # int and ranges
    ("num_threads=-1", r"num_threads=-1 is not valid: it must be a whole number >= 1 or null"),
    ("num_threads=abc", r"num_threads='abc' is not valid: it must be a whole number >= 1 or null"),
    ("num_threads=0", r"num_threads=0 is not valid"),
    ("seed=abc", r"seed='abc' is not valid: it must be a whole number >= 0 and <= 4294967295"),
    ("trainer.max_epochs=0", r"trainer.max_epochs=0 is not valid: it must be a whole number >= 1"),
    ("trainer.batch_size=2.5", r"trainer.batch_size=2.5 is not valid: it must be a whole number >= 1"),
    ("dataset.kcore=five", r"dataset.kcore='five' is not valid: it must be a whole number >= 0 or null"),
    (
        "dataset.min_user_interactions=2",
        r"dataset.min_user_interactions=2 is not valid: it must be a whole number >= 3",
    ),
    ("model.hidden_size=6.5", r"model.hidden_size=6.5 is not valid: it must be a whole number"),
    ("model=s3rec model.pretrain.mask_p=1", r"model.pretrain.mask_p=1 is not valid: it must be a number > 0 and < 1"),
    ("optimizer.betas=[0.9]", r"optimizer.betas=\[0.9\] is not valid: it must be a list of 2 \(a number, a number\)"),
    ("loss.chunk_size=many", r"loss.chunk_size='many' is not valid: it must be a whole number >= 1 or auto or null"),
    ("eval.batch_size=many", r"eval.batch_size='many' is not valid: it must be auto or a whole number >= 1"),
    # enums
    ("device=gpu", r"device='gpu' is not valid: it must be one of auto, cpu, cuda, cuda:<index>, mps"),
    ("trainer.precision=fp64", r"trainer.precision='fp64' is not valid: it must be one of fp32, bf16, fp16\."),
    ("stage=foo", r"stage='foo' is not valid: it must be one of finetune, pretrain"),
    ("dataset.format=parquet", r"dataset.format='parquet' is not valid: it must be one of s3rec, atomic, csv"),
    (
        "trainer.monitor=valid/mrr",
        r"trainer.monitor='valid/mrr' is not valid: it must be one of valid/hr@5, .*valid/ndcg@20",
    ),
    # unknown keys, in every group (Hydra's '+' adds them; nothing would read them)
    ("+foo=1", r"unknown option foo: nothing in seqrec reads it.*Valid top-level options are: data_dir, device"),
    ("+max_epochs=5", r"unknown option max_epochs: .*Did you mean trainer.max_epochs\?"),
    ("+dataset.user_column=u", r"unknown option dataset.user_column: .*Did you mean dataset.user_col\?"),
    ("+model.hidden=3", r"unknown option model.hidden: .*Did you mean model.hidden_size\?.*Valid model options are: "),
    (
        "model=s3rec +model.pretrain.epoch=3",
        r"unknown option model.pretrain.epoch: .*Did you mean model.pretrain.epochs\?",
    ),
    ("+model.pretrained=false", r"unknown option model.pretrained: seqrec.models.SASRec has no pre-training stage"),
    ("+loss.chunk=4", r"unknown option loss.chunk: .*Did you mean loss.chunk_size\?"),
    ("+optimizer.lrr=1", r"unknown option optimizer.lrr: .*Did you mean optimizer.lr\?"),
    ("+trainer.max_epoch=2", r"unknown option trainer.max_epoch: .*Did you mean trainer.max_epochs\?"),
    ("+eval.ks=[1,5]", r"unknown option eval.ks: .*Valid eval options are: batch_size, mask_history, rank_repeats\."),
    ("+eval.foo=1", r"unknown option eval.foo: "),
    ("loss=bce +loss.sampler.foo=1", r"unknown option loss.sampler.foo: nothing in seqrec reads it"),
    # values seqrec passes itself
    (
        "+trainer.seed=7",
        r"trainer.seed cannot be set: seqrec passes seed to seqrec.training.trainer.Trainer itself.*seed=7",
    ),
    ("+model.n_items=5", r"model.n_items cannot be set"),
    # eval's options, interpolated into the trainer: set in one place, or training and analysis disagree
    (
        "trainer.mask_history=false",
        r"trainer.mask_history=False differs from eval.mask_history=True.*eval.mask_history=\.\.\.",
    ),
    ("trainer.eval_batch_size=64", r"trainer.eval_batch_size=64 differs from eval.batch_size='auto'"),
    # a third-party union with a member no config value can be (torch's lr: float | Tensor)
    ("optimizer.lr=abc", r"optimizer.lr='abc' is not valid: it must be a number\."),
    # combinations and missing values
    ("stage=pretrain", r"stage=pretrain needs a model with a pre-training stage \(model=s3rec\)"),
    ("dataset=custom", r"dataset.path has no value \(it is '\?\?\?'"),
]


@pytest.mark.parametrize("overrides,message", BAD, ids=[b[0] for b in BAD])
def test_bad_values_are_one_paragraph_naming_the_option(overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        validate_config(compose_config(overrides.split()))
    assert "\n" not in str(err.value)


def test_a_bad_value_leaves_no_run_folder(tmp_path):
    from seqrec.runs.pipeline import run

    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="eval.mask_history"):
        run(compose_config([f"output_dir={out}", f"data_dir={tmp_path / 'nodata'}", "eval.mask_history=no"]))
    assert not out.exists() and not (tmp_path / "nodata").exists()  # failed before data or outputs


def test_a_value_error_of_a_class_names_its_option():
    checked = validate_config(compose_config(["loss=bce", "loss.num_negatives=0"]))
    with pytest.raises(
        ConfigError,
        match=r"invalid loss.num_negatives=0: bce needs num_negatives >= 1 \(a whole number of sampled "
        r"negatives per position, e.g. 64\), got 0 \(refused by seqrec.losses.sampled.BCE\)",
    ):
        build_object(checked.loss, "loss")
    checked = validate_config(compose_config(["model.num_heads=3"]))
    with pytest.raises(ConfigError, match=r"invalid model.hidden_size=64, model.num_heads=3: hidden_size 64 is not a "):
        build_object(checked.model, "model", n_items=5, max_len=50)


def test_valid_values_pass_unchanged():
    cfg = compose_config(
        [
            "model=s3rec",
            "model.pretrained=false",
            "eval.batch_size=128",
            "num_threads=2",
            "device=cuda:1",
            "dataset.kcore=10",
            "trainer.precision=bf16",
        ]
    )
    checked = validate_config(cfg)
    assert checked.pretraining.pretrained is False and checked.pretraining.pretrain.epochs == 150
    assert checked.run.num_threads == 2 and checked.run.device == "cuda:1" and checked.eval.batch_size == 128
    assert checked.dataset.kcore == 10 and checked.trainer["precision"] == "bf16"
    assert "pretrain" not in checked.model and cfg.model.pretrained is False  # the config itself is untouched


def test_supplied_arguments_are_what_the_pipeline_passes():
    # a trainer or model argument that is neither an option nor supplied would be a missing option
    from seqrec.training.trainer import Trainer

    params = inspect.signature(Trainer).parameters
    assert set(SUPPLIED["trainer"]) <= set(params)
    assert set(yaml_values(CONF / "trainer" / "default.yaml")) - {"_target_"} | {
        "mask_history",
        "rank_repeats",
        "eval_batch_size",
    } | set(SUPPLIED["trainer"]) == set(params)


# -- the checker on hand-written annotations ------------------------------------------------------------
@pytest.mark.parametrize(
    "tp,good,bad",
    [
        (bool, [True, False], ["no", "true", 1, 0, None]),
        (int, [0, -3, 7], [True, 2.0, "5", None]),
        (float, [0.5, 1, -2], [True, "0.5", None]),
        (PositiveInt, [1, 99], [0, -1, 1.5]),
        (NonNegativeInt | None, [0, 5, None], [-1, "x"]),
        (Probability, [0.2, 0.999], [0, 1, 1.0, -0.1]),
        (Literal["fp32", "bf16"], ["fp32", "bf16"], ["fp64", "FP32", None]),
        (Literal[1, 2], [1, 2], [True, 1.0, "1"]),
        (tuple[float, float], [[0.9, 0.99], (1, 2)], [[0.9], [0.9, "x"], 0.9]),
        (list[int], [[], [1, 2]], [[1, "2"], "12"]),
        (Annotated[str, Pattern(r"a|b\d", "a or b<digit>")], ["a", "b7"], ["b", "ab7", 3]),
    ],
)
def test_accepts_checks_types_exactly(tp, good, bad):
    assert all(accepts(tp, v) for v in good), good
    assert not any(accepts(tp, v) for v in bad), [v for v in bad if accepts(tp, v)]


def test_a_new_class_needs_no_registration():
    # adding a loss or model is a class + a YAML: its signature is its schema
    @dataclass
    class Recipe:
        steps: PositiveInt = 1

    class ToyLoss:
        def __init__(
            self,
            margin: float = 1.0,
            mode: Literal["sum", "mean"] = "mean",
            temperature: float | None = None,
            recipe: Recipe | None = None,
        ):
            pass

    check_options({"_target_": "x.ToyLoss", "margin": 2, "mode": "sum", "recipe": {"steps": 3}}, ToyLoss, "loss")
    with pytest.raises(ConfigError, match=r"loss.mode='max' is not valid: it must be one of sum, mean"):
        check_options({"mode": "max"}, ToyLoss, "loss")
    with pytest.raises(
        ConfigError,
        match=r"unknown option loss.margn: .*Did you mean loss.margin\?.*"
        r"Valid loss options are: margin, mode, recipe, temperature\.",
    ):
        check_options({"margn": 1}, ToyLoss, "loss")
    with pytest.raises(ConfigError, match=r"loss.recipe.steps=0 is not valid: it must be a whole number >= 1"):
        check_options({"recipe": {"steps": 0}}, ToyLoss, "loss")


def test_range_bounds_are_inclusive_or_not_as_declared():
    assert Range(ge=1).holds(1) and not Range(gt=1).holds(1) and Range(le=1).holds(1) and not Range(lt=1).holds(1)
    assert str(Range(gt=0, lt=1)) == "> 0 and < 1" and str(Range(ge=0, le=4294967295)) == ">= 0 and <= 4294967295"


def test_the_table2_experiment_validates_as_hydra_runs_it():
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=table2", "seeds=3"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # ${hydra:launcher.n_jobs} resolves as in a run
    with open_dict(cfg):
        del cfg["hydra"]  # a task function gets the config without it
    try:
        checked = validate_config(cfg)
    finally:
        HydraConfig.instance().cfg = None  # later tests run outside a Hydra app again
    assert (
        checked.run.seeds == 3 and checked.run.num_threads is None and checked.trainer["log_test_every_epoch"] is True
    )
    with open_dict(cfg):
        cfg.seeds, cfg.num_threads = 0, 1
    with pytest.raises(ConfigError, match=r"seeds=0 is not valid: it must be a whole number >= 1 or null"):
        validate_config(cfg)


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_composes_and_validates(name):
    """Each conf/experiment file (table2, losses, a tuned `<search>_best` the tune report wrote)
    must stay usable as `experiment=<name>` as the options around it change."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={name}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # ${hydra:…} resolves as in a run
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        validate_config(cfg)
    finally:
        HydraConfig.instance().cfg = None


@pytest.mark.parametrize(
    "model, option, bound",
    [
        ("sasrec", "hidden_size=0", "whole number >= 1"),
        ("sasrec", "num_heads=0", "whole number >= 1"),
        ("sasrec", "num_blocks=-1", "whole number >= 1"),
        ("sasrec", "init_std=-1", "number > 0"),
        ("sasrec", "dropout=1.0", "number >= 0 and < 1"),
        ("s3rec", "num_blocks=0", "whole number >= 1"),
        ("bsarec", "hidden_size=0", "whole number >= 1"),
        ("gru4rec", "num_layers=0", "whole number >= 1"),
        ("gru4rec", "embedding_size=-4", "whole number >= 1"),
    ],
)
def test_model_sizes_out_of_range_are_one_paragraph_not_a_silent_or_crashing_run(model, option, bound):
    # a size of 0 would train a model whose every score is 0; others fail deep inside torch
    cfg = compose_config([f"model={model}", f"model.{option}"])
    with pytest.raises(ConfigError, match=f"model.{option} is not valid: it must be a {bound}"):
        build_object(validate_config(cfg).model, "model", n_items=30, max_len=10)
