"""S3-Rec: pre-training samples, the four objectives, checkpoints, and pre-train + fine-tune runs."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose_config
from omegaconf import OmegaConf

from seqrec.data import LeaveOneOut, SequenceData
from seqrec.data.attributes import load_attributes
from seqrec.data.pretrain_samples import PretrainData
from seqrec.errors import DataError, SeqrecError
from seqrec.models import S3Rec, SASRec
from seqrec.models.s3rec_stage import PretrainConfig
from seqrec.training.checkpoints import Interrupted
from seqrec.training.pretrain import OBJECTIVES, PretrainLoop
from seqrec.training.pretrain_stage import PretrainStage

N_TRAIN_ITEMS, N_ATTRIBUTES, MAX_LEN = 12, 5, 6


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is fastest, and steady on a busy machine (no OpenMP spinning)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny():
    """7 users over items 1..12 in their training parts; each user's validation and test items
    are ids 13.. used nowhere else, so a leak is visible as an id > 12."""
    rng = np.random.default_rng(0)
    lengths = [3, 4, 5, 8, 10, 12, 6]  # with validation and test item
    held = iter(range(N_TRAIN_ITEMS + 1, N_TRAIN_ITEMS + 1 + 2 * len(lengths)))
    seqs = [list(rng.integers(1, N_TRAIN_ITEMS + 1, n - 2)) + [next(held), next(held)] for n in lengths]
    n_items = N_TRAIN_ITEMS + 2 * len(lengths)
    data = SequenceData(
        name="tiny",
        items=np.concatenate(seqs).astype(np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        n_items=n_items,
        user_tokens=np.array([f"u{i}" for i in range(len(lengths))]),
        item_tokens=np.array(["[PAD]"] + [str(i) for i in range(1, n_items + 1)]),
        fingerprint="tiny",
    )
    split = LeaveOneOut.build(data, max_len=MAX_LEN)
    attributes = torch.zeros(n_items + 1, N_ATTRIBUTES + 1, dtype=torch.bool)
    attributes[torch.arange(1, n_items + 1), 1 + torch.arange(n_items) % N_ATTRIBUTES] = True
    attributes[torch.arange(1, n_items + 1), 1 + (torch.arange(n_items) * 3 + 1) % N_ATTRIBUTES] = True
    return data, split, PretrainData.build(split, attributes), seqs


def make_model(n_items, **kwargs):
    torch.manual_seed(0)
    kwargs = {"hidden_size": 16, "num_heads": 2, "dropout": 0.0, **kwargs}
    return S3Rec(n_items, max_len=MAX_LEN, n_attributes=N_ATTRIBUTES, **kwargs)


def all_rows(pdata):
    return torch.arange(len(pdata))


# -- samples ------------------------------------------------------------------------------------
def test_prefixes_are_every_prefix_of_the_last_max_len_training_items(tiny):
    _, _, pdata, seqs = tiny
    expected = []
    for seq in seqs:  # the reference's PretrainDataset.split_sequence
        window = seq[-(MAX_LEN + 2) : -2]
        expected += [[0] * (MAX_LEN - i - 1) + window[: i + 1] for i in range(len(window))]
    assert pdata.windows(all_rows(pdata), MAX_LEN).tolist() == expected


def test_samples_never_contain_a_validation_or_test_item(tiny):
    _, _, pdata, seqs = tiny
    held = pdata.held_out  # [P, 2]
    for seed in range(20):  # every epoch redraws masks, negatives and segments
        batch = pdata.batch(all_rows(pdata), torch.Generator().manual_seed(seed), mask_p=0.5)
        for name in ("items", "masked", "segment_masked", "pos_segment", "neg_segment"):
            ids = batch[name]
            assert ((ids <= N_TRAIN_ITEMS) | (ids == pdata.n_items + 1)).all(), name  # no held-out id at all
        own = (batch["negatives"][:, :, None] == held[:, None, :]).any(-1)  # [P, W]
        assert not own.any()  # nor the user's own validation/test item as a MIP negative


def test_masking_never_masks_padding_and_uses_a_dedicated_token(tiny):
    _, _, pdata, _ = tiny
    mask_id = pdata.n_items + 1
    assert mask_id not in (0, *range(1, pdata.n_items + 1))
    masked_share, real_count = 0.0, 0
    for seed in range(50):
        batch = pdata.batch(all_rows(pdata), torch.Generator().manual_seed(seed), mask_p=0.2, trim=False)
        items, masked = batch["items"], batch["masked"]
        is_mask = masked == mask_id
        assert (masked[items == 0] == 0).all()  # padding stays padding
        assert (masked[~is_mask] == items[~is_mask]).all()  # only masks replace items
        assert is_mask[:, -1].all()  # the last item of every prefix is always masked
        real = (items != 0)[:, :-1]
        masked_share += float(is_mask[:, :-1][real].sum())
        real_count += int(real.sum())
        # negatives of masked positions are real items not in the prefix
        neg = batch["negatives"][is_mask]
        assert ((neg >= 1) & (neg <= pdata.n_items)).all()
        rows = is_mask.nonzero()[:, 0]
        assert not (items[rows] == neg[:, None]).any()
    assert masked_share / real_count == pytest.approx(0.2, abs=0.05)


def test_segments_are_a_contiguous_span_and_a_corpus_slice(tiny):
    _, _, pdata, _ = tiny
    mask_id = pdata.n_items + 1
    corpus = pdata.corpus.tolist()
    batch = pdata.batch(all_rows(pdata), torch.Generator().manual_seed(3), mask_p=0.2)
    for p in range(len(pdata)):
        items = batch["items"][p]
        n = int((items != 0).sum())
        if not batch["segment_valid"][p]:
            assert n < 2
            continue
        span = (batch["segment_masked"][p] == mask_id).nonzero().flatten()
        k = len(span)
        assert 1 <= k <= n // 2 and (span.diff() == 1).all()
        pos, neg = batch["pos_segment"][p], batch["neg_segment"][p]
        assert (pos[span] == items[span]).all()
        for seq in (pos, neg):
            rest = torch.ones_like(items, dtype=torch.bool)
            rest[span] = False
            assert (seq[rest & (items != 0)] == mask_id).all() and (seq[items == 0] == 0).all()
        values = neg[span].tolist()
        assert any(corpus[i : i + k] == values for i in range(len(corpus) - k + 1))


# -- the objectives -----------------------------------------------------------------------------
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_is_finite_decreases_and_trains_the_encoder(tiny, objective):
    _, _, pdata, _ = tiny
    model = make_model(pdata.n_items)
    batch = pdata.batch(all_rows(pdata), torch.Generator().manual_seed(0), mask_p=0.3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    values = []
    for step in range(8):
        loss = model.pretrain_losses(batch)[objective]
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            encoder_grad = sum(float(p.grad.abs().sum()) for p in model.blocks.parameters() if p.grad is not None)
            assert encoder_grad > 0
        optimizer.step()
        values.append(loss.item())
    assert values[-1] < values[0]


def test_pretraining_is_bidirectional_and_fine_tuning_causal(tiny):
    _, _, pdata, _ = tiny
    model = make_model(pdata.n_items).eval()
    seq = torch.tensor([[0, 3, 5, 7, 2, 9]])
    changed = seq.clone()
    changed[0, -1] = 11
    with torch.no_grad():
        # real positions only (a padding query attends to everything: its output is unused)
        assert torch.allclose(model(seq)[:, 1:-1], model(changed)[:, 1:-1])  # causal
        assert not torch.allclose(
            model.encode_bidirectional(seq)[:, 1:-1], model.encode_bidirectional(changed)[:, 1:-1]
        )


def test_mask_token_is_not_a_row_of_the_item_table(tiny):
    _, _, pdata, _ = tiny
    model = make_model(pdata.n_items).eval()
    assert model.item_emb.weight.shape[0] == pdata.n_items + 1  # padding + N items: the classes
    seq = torch.tensor([[0, 3, model.mask_id]])
    with torch.no_grad():
        x = model.embed(seq)
        ref = model.emb_norm(model.mask_emb + model.pos_emb.weight[-1])
    assert torch.allclose(x[0, -1], ref, atol=1e-6)


def test_not_pretrained_s3rec_is_sasrec():
    torch.manual_seed(7)
    sasrec = SASRec(30, max_len=MAX_LEN, hidden_size=16)
    after_sasrec = torch.rand(3)
    torch.manual_seed(7)
    s3rec = S3Rec(30, max_len=MAX_LEN, n_attributes=4, hidden_size=16)
    assert torch.equal(torch.rand(3), after_sasrec)  # same global random stream afterwards
    s3_state = s3rec.state_dict()
    for name, value in sasrec.state_dict().items():
        assert torch.equal(value, s3_state[name]), name


# -- checkpoints --------------------------------------------------------------------------------
def tiny_stage(tiny, tmp_path, **recipe):
    data, split, pdata, _ = tiny
    config = PretrainConfig(**{"epochs": 2, "batch_size": 4, "save_every": 1, "dir": str(tmp_path), **recipe})
    key = {"data": data.fingerprint, "recipe": config.recipe()}
    return PretrainStage(
        config=config,
        folder=tmp_path / "tiny-test",
        key=key,
        make_model=lambda: make_model(data.n_items, dropout=0.3),
        data=pdata,
        n_attributes=N_ATTRIBUTES,
    )


def test_checkpoint_round_trips_and_resuming_matches_one_run(tiny, tmp_path):
    _, _, pdata, _ = tiny
    stage = tiny_stage(tiny, tmp_path / "a")
    path = stage.checkpoint(progress=False)
    assert path.name == "epoch-2.pt" and stage.saved_epochs() == [1, 2]

    trained = stage.make_model()
    trained.load_state_dict(torch.load(path, weights_only=False)["model"])
    fresh = make_model(pdata.n_items, dropout=0.3)
    facts = tiny_stage(tiny, tmp_path / "a").load_into(fresh, progress=False)
    assert facts["pretrain_checkpoint"] == str(path) and facts["pretrain_epochs"] == 2
    assert facts["pretrain_epochs_run"] == 0  # reused, not trained again
    batch = pdata.batch(all_rows(pdata), torch.Generator().manual_seed(1), mask_p=0.2)
    with torch.no_grad():
        seq = pdata.windows(all_rows(pdata), MAX_LEN)
        assert torch.equal(trained.eval()(seq), fresh.eval()(seq))
        assert all(
            torch.equal(a, b)
            for a, b in zip(trained.pretrain_losses(batch).values(), fresh.pretrain_losses(batch).values())
        )

    # 1 epoch, then resume to 2: the same weights as 2 epochs in one go
    short = tiny_stage(tiny, tmp_path / "b", epochs=1)
    short.checkpoint(progress=False)
    resumed = tiny_stage(tiny, tmp_path / "b")
    resumed.checkpoint(progress=False)
    assert resumed.facts["pretrain_epochs_run"] == 1
    one_go = torch.load(path, weights_only=False)["model"]
    two_steps = torch.load(resumed.path(2), weights_only=False)["model"]
    assert all(torch.equal(one_go[k], two_steps[k]) for k in one_go)


def test_a_checkpoint_without_loop_state_resumes_after_its_epoch(tiny, tmp_path):
    # pre-training checkpoints written before the loop state was saved (an older seqrec, a copy in
    # results/pretrained/) hold model, optimizer, epoch and history only: they continue after
    # their epoch to the weights of one uninterrupted run
    one_go = tiny_stage(tiny, tmp_path / "a")
    uninterrupted = torch.load(one_go.checkpoint(progress=False), weights_only=True)["model"]
    short = tiny_stage(tiny, tmp_path / "b", epochs=1)
    short.checkpoint(progress=False)
    for name in ("last.pt", "epoch-1.pt"):
        state = torch.load(short.folder / name, weights_only=True)
        torch.save({k: state[k] for k in ("model", "optimizer", "epoch", "history", "key")}, short.folder / name)
    resumed = tiny_stage(tiny, tmp_path / "b")
    weights = torch.load(resumed.checkpoint(progress=False), weights_only=True)["model"]
    assert resumed.facts["pretrain_epochs_run"] == 1
    assert all(torch.equal(uninterrupted[k], weights[k]) for k in uninterrupted)


def test_pretraining_saves_every_epoch_and_skips_damaged_checkpoints(tiny, tmp_path, caplog):
    # save_every=10: kept files only at the end, but last.pt after every epoch
    sparse = tiny_stage(tiny, tmp_path / "a", epochs=3, save_every=10)
    sparse.checkpoint(progress=False)
    assert sparse.saved_epochs() == [3]
    assert torch.load(sparse.folder / "last.pt", weights_only=True)["epoch"] == 3
    one_go = torch.load(sparse.path(3), weights_only=True)["model"]

    # 2 epochs, then both newest files damaged: resuming to 3 starts from epoch 1 and says so
    stage = tiny_stage(tiny, tmp_path / "b", epochs=2)
    stage.checkpoint(progress=False)
    assert stage.saved_epochs() == [1, 2]
    for name in ("last.pt", "epoch-2.pt"):
        (stage.folder / name).write_bytes(b"cut short")
    resumed = tiny_stage(tiny, tmp_path / "b", epochs=3)
    with caplog.at_level("WARNING"):
        resumed.checkpoint(progress=False)
    damaged = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(damaged) == 2 and any("last.pt" in m for m in damaged) and any("epoch-2.pt" in m for m in damaged)
    assert resumed.facts["pretrain_epochs_run"] == 2  # epochs 2 and 3
    again = torch.load(resumed.path(3), weights_only=True)["model"]
    assert all(torch.equal(one_go[k], again[k]) for k in one_go)


def test_a_damaged_checkpoint_at_the_target_epoch_is_made_again(tiny, tmp_path, caplog):
    # the file a fine-tuning run loads was cut short (a full disk, a copy): a warning names it and
    # pre-training repeats from the previous intact state, to the same weights
    stage = tiny_stage(tiny, tmp_path / "a", epochs=2)
    stage.checkpoint(progress=False)
    intact = torch.load(stage.path(2), weights_only=True)["model"]
    for name in ("epoch-2.pt", "last.pt"):
        (stage.folder / name).write_bytes((stage.folder / name).read_bytes()[:100])
    again = tiny_stage(tiny, tmp_path / "a", epochs=2)
    with caplog.at_level("WARNING"):
        path = again.checkpoint(progress=False)
    assert "epoch-2.pt is damaged" in caplog.text and again.facts["pretrain_epochs_run"] == 1  # epoch 2 again
    remade = torch.load(path, weights_only=True)["model"]
    assert all(torch.equal(intact[k], remade[k]) for k in intact)


def test_pretrain_history_and_global_rng_untouched(tiny, tmp_path):
    stage = tiny_stage(tiny, tmp_path, epochs=1)
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    stage.checkpoint(progress=False)
    assert torch.equal(torch.random.get_rng_state(), before)
    history = torch.load(stage.path(1), weights_only=False)["history"]
    assert [row["epoch"] for row in history] == [1] and set(OBJECTIVES) <= set(history[0])


def test_pretrain_loop_lowers_the_weighted_loss(tiny):
    _, _, pdata, _ = tiny
    model = make_model(pdata.n_items)
    rows = PretrainLoop(model, pdata, PretrainConfig(epochs=4, batch_size=8, lr=5e-3), progress=False).fit()
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4] and rows[-1]["loss"] < rows[0]["loss"]
    # the epoch's loss is the weighted sum of its objectives' means
    weights = PretrainConfig().weights
    assert rows[0]["loss"] == pytest.approx(sum(weights[k] * rows[0][k] for k in OBJECTIVES))


class StopAfter:
    """A stop request (:class:`seqrec.training.checkpoints.StopRequest`) unset for its first ``n`` reads, as
    if SIGTERM came then (the loop reads ``signal`` after every batch but an epoch's last, and
    once between epochs)."""

    def __init__(self, n: int):
        self.n = n

    @property
    def signal(self):
        self.n -= 1
        return 15 if self.n < 0 else None


def test_pretraining_stopped_inside_an_epoch_continues_to_the_same_weights(tiny, tmp_path):
    # SIGTERM in the middle of epoch 2: last.pt holds the position inside the epoch (batches done,
    # their sums, the generator states), no epoch-2.pt is written, and the next call finishes
    # epoch 2 to exactly the weights and losses of an uninterrupted pre-training
    one_go = tiny_stage(tiny, tmp_path / "a")
    one_go.checkpoint(progress=False)
    uninterrupted = torch.load(one_go.path(2), weights_only=True)

    cut = tiny_stage(tiny, tmp_path / "b")
    n_batches = -(-len(cut.data) // cut.config.batch_size)
    with pytest.raises(Interrupted):
        cut.checkpoint(progress=False, stop=StopAfter(n_batches + 1))  # epoch 1, then 2 batches of epoch 2
    saved = torch.load(cut.folder / "last.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["loop"]["batches_done"] == 2 and cut.saved_epochs() == [1]

    again = tiny_stage(tiny, tmp_path / "b")
    again.checkpoint(progress=False)
    assert again.facts["pretrain_epochs_run"] == 1
    resumed = torch.load(again.path(2), weights_only=True)
    assert all(torch.equal(uninterrupted["model"][k], resumed["model"][k]) for k in uninterrupted["model"])
    assert resumed["history"] == [
        {**row, "seconds": again_row["seconds"]} for row, again_row in zip(uninterrupted["history"], resumed["history"])
    ]


# -- attributes ---------------------------------------------------------------------------------
def test_json_attributes_dedupe_and_match_item_tokens(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"1": [2, 2, 5], "3": [1], "99": [7]}))
    attrs = load_attributes(
        {"name": "t", "format": "s3rec", "path": "x.txt", "attributes_path": "a.json"},
        tmp_path,
        np.array(["[PAD]", "1", "2", "3"]),
    )
    assert attrs.n_attributes == 7  # the file's largest id, as in S3-Rec's code
    table = attrs.multi_hot(5)
    assert table.shape == (5, 8)
    assert table[1].nonzero().flatten().tolist() == [2, 5] and not table[2].any() and table[3, 1]
    assert not table[0].any() and not table[4].any()  # padding and mask rows


def test_sparse_json_attribute_ids_are_refused_before_any_table_is_built(tmp_path):
    cfg = {"name": "t", "format": "s3rec", "path": "x.txt", "attributes_path": "a.json"}
    items = np.array(["[PAD]", "1", "2"])
    (tmp_path / "a.json").write_text(json.dumps({"1": [1000000000000], "2": [3, 4500000]}))
    with pytest.raises(DataError, match=r"go up to 1000000000000, but only 3 distinct.*1\.\.3.*item_attribute_col"):
        load_attributes(cfg, tmp_path, items)
    (tmp_path / "a.json").write_text(json.dumps({"1": [1, 900], "2": [3]}))  # a few gaps are kept as they are
    assert load_attributes(cfg, tmp_path, items).n_attributes == 900


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["Beauty", "Sports_and_Outdoors", "Toys_and_Games", "Yelp", "LastFM"])
def test_published_attribute_ids_keep_their_numbering(shared_data, name):
    from seqrec.data.attributes import _read_json

    (_, attrs), n_attributes = _read_json(shared_data / "s3rec" / f"{name}_item2attributes.json")
    # the authors' checkpoints index their attribute embedding by these ids, which are exactly 1..A
    assert n_attributes == attrs.max() == len(np.unique(attrs))


def test_item_file_token_seq_attributes(tmp_path):
    (tmp_path / "m.item").write_text(
        "item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
        "10\tToy Story\tAnimation Comedy\n20\tHeat\tAction\n30\tX\t\n"
    )
    cfg = {"name": "m", "format": "atomic", "path": "m.inter", "item_path": "m.item", "item_attribute_col": "class"}
    attrs = load_attributes(cfg, tmp_path, np.array(["[PAD]", "20", "10", "30"]))
    assert attrs.n_attributes == 3
    table = attrs.multi_hot()
    assert table[1].nonzero().flatten().tolist() == [3]  # Action
    assert table[2].nonzero().flatten().tolist() == [1, 2]  # Animation, Comedy
    assert not table[3].any()


def test_attributes_keyed_by_other_ids_are_an_error_and_sparse_ones_a_warning(tmp_path, caplog):
    cfg = {"name": "t", "format": "csv", "path": "x.csv", "attributes_path": "a.json"}
    items = np.array(["[PAD]", "i0", "i1", "i2"])
    (tmp_path / "a.json").write_text(json.dumps({"1": [2], "2": [3], "3": [1]}))  # numbers, not the raw ids
    with pytest.raises(DataError, match=r"none of its 3 item ids \(e.g. '1', '2', '3'\) is an item.*'i0', 'i1', 'i2'"):
        load_attributes(cfg, tmp_path, items)
    (tmp_path / "a.json").write_text(json.dumps({"i0": [2], "9": [3]}))
    load_attributes(cfg, tmp_path, items)
    assert "only 1 of the dataset's 3 items have attributes (1 of the file's item ids are not" in caplog.text


def test_dataset_without_attributes_is_a_clear_error(tmp_path):
    cfg = {"name": "mine", "format": "csv", "path": "log.csv"}
    with pytest.raises(DataError, match="model.pretrained=false"):
        load_attributes(cfg, tmp_path, np.array(["[PAD]", "a"]))
    assert load_attributes(cfg, tmp_path, np.array(["[PAD]", "a"]), required=False) is None


# -- pre-train + fine-tune through the pipeline ---------------------------------------------------
@pytest.mark.realdata
def test_pretrain_then_finetune_on_a_lastfm_slice(tmp_path, lastfm_data_dir, monkeypatch):
    import seqrec.runs.pipeline
    import seqrec.training.pretrain_stage
    from seqrec.evaluation import evaluate_ranks, mean_metrics
    from seqrec.runs.pipeline import run
    from seqrec.runs.rundir import load_trained

    s3rec = ("model=s3rec", "model.pretrain.epochs=1", f"model.pretrain.dir={tmp_path / 'pre'}")

    def small(out, *overrides, model=s3rec):
        return compose_config(
            [
                f"data_dir={lastfm_data_dir}",
                f"output_dir={tmp_path / out}",
                "dataset.max_users=20",
                *model,
                "trainer.max_epochs=1",
                "trainer.progress=false",
                "device=cpu",
                *overrides,
            ]
        )

    first = run(small("cce"))
    assert first["model"] == "s3rec" and first["pretrain_epochs"] == 1 and first["pretrain_epochs_run"] == 1
    checkpoint = first["pretrain_checkpoint"]
    assert checkpoint.endswith("epoch-1.pt") and (tmp_path / "cce" / "metrics.json").exists()
    assert 0.0 <= first["test/ndcg@10"] <= 1.0

    second = run(small("bce", "loss=bce", "seed=3"))  # another loss and seed reuse the pre-training
    assert second["pretrain_checkpoint"] == checkpoint and second["pretrain_epochs_run"] == 0

    summary = run(small("pre", "stage=pretrain"))
    assert summary["pretrain_checkpoint"] == checkpoint
    assert (tmp_path / "pre" / "pretrain.json").exists() and not (tmp_path / "pre" / "metrics.json").exists()

    # from here on, touching pre-training data fails: from scratch and re-evaluation need none
    def no_pretraining_data(*args, **kwargs):
        raise AssertionError("pre-training data touched")

    monkeypatch.setattr(seqrec.training.pretrain_stage.PretrainData, "build", no_pretraining_data)
    monkeypatch.setattr(seqrec.training.pretrain_stage, "load_attributes", no_pretraining_data)
    monkeypatch.setattr(seqrec.data.attributes, "load_attributes", no_pretraining_data)
    trained = load_trained(tmp_path / "cce", device="cpu")
    assert type(trained.model).__name__ == "S3Rec" and not trained.model.training
    history = lambda users: trained.split.history(users, "test")  # noqa: E731
    ranks = evaluate_ranks(trained.model, trained.split.test_input, trained.split.test_target, history)
    again = mean_metrics(ranks, "test/")
    assert again == {k: first[k] for k in again} and len(again) == 6
    saved = pd.read_csv(tmp_path / "cce" / "per_user_test.csv")["rank"].to_numpy()
    assert (ranks.numpy() == saved).all() and len(set(saved)) > 5  # every user's rank, not only the means

    scratch = run(small("scratch", "model.pretrained=false"))
    assert scratch["pretrained"] is False and scratch["pretrain_checkpoint"] is None
    sasrec = run(small("sasrec", model=["model=sasrec"]))  # from scratch, S3-Rec fine-tunes exactly like SASRec
    assert all(scratch[k] == sasrec[k] for k in sasrec if k.startswith(("valid/", "test/")))


@pytest.mark.realdata
def test_sigterm_while_pretraining_saves_the_position_and_the_same_command_continues(
    tmp_path, lastfm_data_dir, monkeypatch, capsys
):
    # the pre-training stage stops like fine-tuning: after the running batch, with last.pt in the
    # pre-training folder, exit code 128 + signal, and a message that says how to continue
    import contextlib

    import seqrec.runs.resume
    from seqrec.runs.cli import report_errors
    from seqrec.runs.pipeline import run

    overrides = [
        f"data_dir={lastfm_data_dir}",
        "dataset.max_users=20",
        "model=s3rec",
        "model.pretrain.epochs=1",
        "model.pretrain.batch_size=16",
        f"model.pretrain.dir={tmp_path / 'pre'}",
        "stage=pretrain",
        "trainer.progress=false",
        "device=cpu",
    ]
    monkeypatch.setattr(seqrec.runs.resume, "stop_on_signals", lambda: contextlib.nullcontext(StopAfter(2)))
    with pytest.raises(SystemExit) as stopped, report_errors(run_dir=tmp_path / "a"):  # as train.py runs it
        run(compose_config([*overrides, f"output_dir={tmp_path / 'a'}"]))
    message = " ".join(capsys.readouterr().err.split())
    assert stopped.value.code == 128 + 15 and "during pre-training" in message
    assert not (tmp_path / "a").exists()  # the run folder held nothing to continue: removed
    (folder,) = (tmp_path / "pre").iterdir()
    assert f"{folder}/last.pt" in message
    assert torch.load(folder / "last.pt", weights_only=True)["loop"]["batches_done"] == 3  # read 3: set

    monkeypatch.undo()
    summary = run(compose_config([*overrides, f"output_dir={tmp_path / 'b'}"]))
    assert summary["pretrain_epochs"] == 1 and summary["pretrain_epochs_run"] == 1
    assert summary["pretrain_checkpoint"] == str(folder / "epoch-1.pt")


@pytest.mark.realdata
def test_pretrain_stage_needs_a_pretraining_model(tmp_path, lastfm_data_dir):
    from seqrec.runs.pipeline import run

    cfg = compose_config(
        [
            f"data_dir={lastfm_data_dir}",
            f"output_dir={tmp_path}",
            "dataset.max_users=20",
            "stage=pretrain",
            "device=cpu",
            "trainer.progress=false",
        ]
    )
    with pytest.raises(SeqrecError, match="model=s3rec"):
        run(cfg)


def test_config_defaults_follow_the_paper():
    for dataset, epochs in [("beauty", 150), ("toys", 150), ("lastfm", 150), ("sports", 100), ("yelp", 100)]:
        cfg = compose_config(["model=s3rec", f"dataset={dataset}"])
        pre = OmegaConf.to_container(cfg.model.pretrain, resolve=True)
        assert pre["epochs"] == epochs
        assert (pre["batch_size"], pre["lr"], pre["mask_p"]) == (100, 1e-3, 0.2)
        assert (pre["aap_weight"], pre["mip_weight"], pre["map_weight"], pre["sp_weight"]) == (0.2, 1.0, 1.0, 0.5)
        assert cfg.model.pretrained is True and cfg.stage == "finetune"
