"""Loading the S3-Rec authors' published pre-trained models (model.pretrained_from, issue #12).

The loaded encoder is checked against an independent forward pass written here from S3-Rec's
published architecture (its ``modules.py``: query/key/value/dense attention with scaled
dot-product scores plus an additive -10000 mask, GELU feed-forward dense_1/dense_2, post-LN with
eps 1e-12), run directly on the published tensors and the raw ids of the S3-Rec data file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config, find_shared_data

from seqrec.errors import SeqrecError
from seqrec.models import S3Rec
from seqrec.models.s3rec_checkpoint import load_published, published_keys

# sha256 of the published LastFM file, from shared/reference/s3rec_pretrained/README.md
LASTFM_SHA256 = "7f06dc6e0756bf42defccb3317021f786a027c2e7dc9a3661c439bd9fe40a262"


# -- the reference forward pass ------------------------------------------------------------------
def _layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _linear(state, name, x):
    return x @ state[f"{name}.weight"].T + state[f"{name}.bias"]


def reference_forward(state: dict, seq: torch.Tensor, num_heads: int = 2, causal: bool = True) -> torch.Tensor:
    """S3-Rec's encoder on raw ids ``seq [B, L]`` (0 = padding, M+1 = mask) → ``[B, L, d]`` (eval mode)."""
    B, L = seq.shape
    x = state["item_embeddings.weight"][seq] + state["position_embeddings.weight"][torch.arange(L)]
    x = _layer_norm(x, state["LayerNorm.weight"], state["LayerNorm.bias"])
    keep = (seq > 0).long()[:, None, None, :]  # [B, 1, 1, L] key is not padding
    if causal:
        keep = keep * (torch.triu(torch.ones(1, L, L), diagonal=1) == 0).long()[:, None]  # [B, 1, L, L]
    additive = (1.0 - keep) * -10000.0
    d = x.shape[-1]
    head = d // num_heads
    n_layers = len({k.split(".")[2] for k in state if k.startswith("item_encoder.layer.")})
    for i in range(n_layers):
        p = f"item_encoder.layer.{i}."
        q, k, v = (
            _linear(state, p + f"attention.{n}", x).view(B, L, num_heads, head).permute(0, 2, 1, 3)
            for n in ("query", "key", "value")
        )
        scores = q @ k.transpose(-1, -2) / math.sqrt(head) + additive
        ctx = (torch.softmax(scores, dim=-1) @ v).permute(0, 2, 1, 3).reshape(B, L, d)
        x = _layer_norm(
            _linear(state, p + "attention.dense", ctx) + x,
            state[p + "attention.LayerNorm.weight"],
            state[p + "attention.LayerNorm.bias"],
        )
        h = _linear(state, p + "intermediate.dense_1", x)
        h = h * 0.5 * (1.0 + torch.erf(h / math.sqrt(2.0)))
        h = _linear(state, p + "intermediate.dense_2", h)
        x = _layer_norm(h + x, state[p + "intermediate.LayerNorm.weight"], state[p + "intermediate.LayerNorm.bias"])
    return x


def fake_published(n_items=5, n_attributes=3, d=8, max_len=6, blocks=2, ffn=None, seed=0) -> dict:
    """A random state dict in the published format (what S3-Rec's code would save)."""
    g = torch.Generator().manual_seed(seed)
    ffn = ffn or 4 * d
    shapes = {
        "item_embeddings.weight": (n_items + 2, d),
        "attribute_embeddings.weight": (n_attributes + 1, d),
        "position_embeddings.weight": (max_len, d),
    }
    for name in ("LayerNorm", "aap_norm", "mip_norm", "map_norm", "sp_norm"):
        shapes[f"{name}.weight"] = (d,) if name == "LayerNorm" else (d, d)
        shapes[f"{name}.bias"] = (d,)
    for i in range(blocks):
        p = f"item_encoder.layer.{i}."
        for name in ("query", "key", "value", "dense"):
            shapes[f"{p}attention.{name}.weight"], shapes[f"{p}attention.{name}.bias"] = (d, d), (d,)
        shapes[f"{p}intermediate.dense_1.weight"], shapes[f"{p}intermediate.dense_1.bias"] = (ffn, d), (ffn,)
        shapes[f"{p}intermediate.dense_2.weight"], shapes[f"{p}intermediate.dense_2.bias"] = (d, ffn), (d,)
        for ln in ("attention.LayerNorm", "intermediate.LayerNorm"):
            shapes[f"{p}{ln}.weight"], shapes[f"{p}{ln}.bias"] = (d,), (d,)
    return {k: torch.randn(*s, generator=g) * 0.5 for k, s in shapes.items()}


def small_model(n_items=5, n_attributes=3, d=8, max_len=6, blocks=2) -> S3Rec:
    return S3Rec(
        n_items, max_len=max_len, n_attributes=n_attributes, hidden_size=d, num_blocks=blocks, num_heads=2, dropout=0.0
    ).eval()


def saved(tmp_path, state, name="Fake-epochs-7.pt") -> Path:
    path = tmp_path / name
    torch.save(state, path)
    return path


# -- mapping, on a small synthetic checkpoint ----------------------------------------------------
def test_rows_follow_the_item_tokens_and_qkv_is_query_key_value(tmp_path):
    state = fake_published()
    tokens = np.array(["[PAD]", "3", "1", "5", "2", "4"])  # seqrec item i is file id tokens[i]
    model = small_model()
    facts = load_published(model, saved(tmp_path, state), item_tokens=tokens)
    items = state["item_embeddings.weight"]
    for i, token in enumerate(tokens[1:], start=1):
        assert torch.equal(model.item_emb.weight[i], items[int(token)])
    assert torch.equal(model.item_emb.weight[0], torch.zeros(8))  # padding row: seqrec's zero
    assert torch.equal(model.mask_emb, items[6])  # last row = mask token M + 1
    qkv = model.blocks[1].qkv.weight
    for j, name in enumerate(("query", "key", "value")):
        assert torch.equal(qkv[8 * j : 8 * (j + 1)], state[f"item_encoder.layer.1.attention.{name}.weight"])
    assert torch.equal(model.attr_emb.weight[1:], state["attribute_embeddings.weight"][1:])
    for head in ("aap", "mip", "map", "sp"):
        assert torch.equal(getattr(model, f"{head}_proj").weight, state[f"{head}_norm.weight"])
        assert torch.equal(getattr(model, f"{head}_proj").bias, state[f"{head}_norm.bias"])
    assert facts["pretrained_from"] == "Fake-epochs-7.pt" and facts["pretrain_epochs"] == 7
    assert (
        facts["pretrained_sha256"]
        == __import__("hashlib").sha256((tmp_path / "Fake-epochs-7.pt").read_bytes()).hexdigest()
    )

    # the same sequence in both id spaces gives the reference's hidden states at real positions
    file_ids = torch.tensor([[0, 0, 3, 5, 4, 1], [2, 4, 1, 3, 3, 5]])
    seqrec_ids = torch.tensor([[0, 0, 1, 3, 5, 2], [4, 5, 2, 1, 1, 3]])
    ref = reference_forward(state, file_ids)
    with torch.no_grad():
        out = model(seqrec_ids)
    real = file_ids > 0
    torch.testing.assert_close(out[real], ref[real], atol=1e-5, rtol=0)


# -- one paragraph per mismatch -------------------------------------------------------------------
def test_a_path_that_is_not_a_file(tmp_path):
    with pytest.raises(SeqrecError, match=r"pretrained_from=.*nope\.pt: does not exist"):
        load_published(small_model(), tmp_path / "nope.pt")
    with pytest.raises(SeqrecError, match="is a folder"):
        load_published(small_model(), tmp_path)


def test_files_that_are_not_state_dicts(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(SeqrecError, match=r"notes\.pt: is not a PyTorch state dict that loads with weights_only=True"):
        load_published(small_model(), text)
    with pytest.raises(SeqrecError, match=r"list\.pt: holds a list, not a state dict"):
        load_published(small_model(), saved(tmp_path, [torch.zeros(2)], "list.pt"))
    with pytest.raises(SeqrecError, match="non-tensor entries"):
        load_published(small_model(), saved(tmp_path, {"a": 1}, "dict.pt"))
    own = {"model": small_model().state_dict(), "optimizer": {}, "epoch": 3}
    with pytest.raises(SeqrecError, match=r"own\.pt: holds a training checkpoint"):
        load_published(small_model(), saved(tmp_path, own, "own.pt"))


def test_missing_unexpected_and_layer_count(tmp_path):
    state = fake_published()
    del state["sp_norm.bias"]
    with pytest.raises(SeqrecError, match=r"missing 1 key\(s\) \(sp_norm\.bias\)"):
        load_published(small_model(), saved(tmp_path, state))
    state = {**fake_published(), "extra.weight": torch.zeros(1)}
    with pytest.raises(SeqrecError, match=r"1 unexpected key\(s\) \(extra\.weight\)"):
        load_published(small_model(), saved(tmp_path, state))
    with pytest.raises(SeqrecError, match=r"The file has 3 encoder layer\(s\), seqrec's model 2 \(model.num_blocks\)"):
        load_published(small_model(), saved(tmp_path, fake_published(blocks=3)))
    assert set(fake_published(blocks=3)) == published_keys(3)


@pytest.mark.parametrize(
    "published, model, message",
    [
        (dict(n_items=7), dict(), r"catalogue of 7 items \(item_embeddings has 9 rows.*dataset '\?' has 5 items"),
        (dict(n_attributes=4), dict(), r"with 4 attributes \(attribute_embeddings has 5 rows\).* has 3\."),
        (dict(d=16), dict(), r"hidden size 16 .*model.hidden_size=16"),
        (dict(max_len=10), dict(), r"pos_emb\.weight would get shape \(10, 8\) .* model has \(6, 8\)"),
        (dict(ffn=24), dict(), r"blocks\.0\.ffn_in\.weight would get shape \(24, 8\)"),
    ],
)
def test_size_mismatches_name_what_differs(tmp_path, published, model, message):
    path = saved(tmp_path, fake_published(**published))
    with pytest.raises(SeqrecError, match=message) as err:
        load_published(small_model(**model), path)
    assert str(path) in str(err.value)


def test_item_tokens_that_are_not_file_ids(tmp_path):
    tokens = np.array(["[PAD]", "1", "2", "a", "4", "5"])
    with pytest.raises(SeqrecError, match=r"item tokens that are not such ids \(e\.g\. 'a'\)"):
        load_published(small_model(), saved(tmp_path, fake_published()), item_tokens=tokens)
    with pytest.raises(SeqrecError, match=r"\(e\.g\. '6'\)"):
        load_published(
            small_model(), saved(tmp_path, fake_published()), item_tokens=np.array(["[PAD]", "1", "2", "3", "4", "6"])
        )


def test_pretrained_from_needs_pretrained():
    from seqrec.config.schema import validate_config

    cfg = compose_config(["model=s3rec", "model.pretrained=false", "model.pretrained_from=x.pt"])
    with pytest.raises(SeqrecError, match="model.pretrained=false"):
        validate_config(cfg)


# -- the published LastFM model -------------------------------------------------------------------
@pytest.fixture(scope="module")
def lastfm_published() -> Path:
    shared = find_shared_data()
    path = shared.parent / "reference" / "s3rec_pretrained" / "LastFM-epochs-150.pt" if shared else None
    if path is None or not path.is_file():
        pytest.skip(
            "the published S3-Rec checkpoints are not on this machine "
            "(shared/reference/s3rec_pretrained/LastFM-epochs-150.pt)"
        )
    return path


@pytest.mark.realdata
def test_lastfm_encoder_equals_the_reference_forward(lastfm_published, lastfm_data_dir):
    from seqrec.data import load_dataset
    from seqrec.data.attributes import load_attributes

    cfg = compose_config(["dataset=lastfm", "model=s3rec"])
    data = load_dataset(cfg.dataset, lastfm_data_dir)
    attributes = load_attributes(cfg.dataset, lastfm_data_dir, data.item_tokens)
    model = S3Rec(data.n_items, max_len=50, n_attributes=attributes.n_attributes).eval()
    load_published(model, lastfm_published, data.item_tokens, data.name)
    state = torch.load(lastfm_published, map_location="cpu", weights_only=True)

    # raw file ids of the first 64 users, read here without seqrec; prefixes of several lengths
    lines = (lastfm_data_dir / "s3rec" / "LastFM.txt").read_text().splitlines()[:64]
    raw = {line.split()[0]: [int(t) for t in line.split()[1:]] for line in lines}
    file_seqs, seqrec_seqs = torch.zeros(64, 50, dtype=torch.long), torch.zeros(64, 50, dtype=torch.long)
    for row, user in enumerate(raw):
        u = list(data.user_tokens).index(user)
        ours = data.items[data.offsets[u] : data.offsets[u + 1]]
        n = [1, 2, 7, 20, 49, 50, 200][row % 7]
        file_part, our_part = raw[user][:n][-50:], ours[:n][-50:]
        file_seqs[row, 50 - len(file_part) :] = torch.tensor(file_part)
        seqrec_seqs[row, 50 - len(our_part) :] = torch.from_numpy(np.asarray(our_part))
    real = file_seqs > 0
    assert real.all(1).any() and (~real).any()  # full rows and padded rows

    ref = reference_forward(state, file_seqs)
    with torch.no_grad():
        ours = model(seqrec_seqs)
        trimmed = model(seqrec_seqs[:, -20:])  # common left padding trimmed: same real positions
    torch.testing.assert_close(ours[real], ref[real], atol=1e-5, rtol=0)
    short = real[:, :30].sum(1) == 0
    torch.testing.assert_close(
        trimmed[short][real[short][:, -20:]], ref[short][:, -20:][real[short][:, -20:]], atol=1e-5, rtol=0
    )

    # pre-training side: bidirectional encoding with mask tokens (seqrec id N+1, file row M+1) and a head
    masked_file, masked_ours = file_seqs.clone(), seqrec_seqs.clone()
    hide = real & (torch.arange(50) % 3 == 0)
    masked_file[hide], masked_ours[hide] = state["item_embeddings.weight"].shape[0] - 1, model.mask_id
    ref_bi = reference_forward(state, masked_file, causal=False)
    with torch.no_grad():
        ours_bi = model.encode_bidirectional(masked_ours)
        logits = model._attribute_logits(model.map_proj, ours_bi[hide])
    torch.testing.assert_close(ours_bi[real], ref_bi[real], atol=1e-5, rtol=0)
    ref_logits = _linear(state, "map_norm", ref_bi[hide]) @ state["attribute_embeddings.weight"][1:].T
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=0)


@pytest.mark.realdata
def test_pipeline_fine_tunes_from_the_published_model(lastfm_published, lastfm_data_dir, tmp_path):
    from seqrec.runs.pipeline import run

    def small(out, *overrides):
        return compose_config(
            [
                f"data_dir={lastfm_data_dir}",
                f"output_dir={tmp_path / out}",
                "dataset.max_users=20",
                "model=s3rec",
                f"model.pretrain.dir={tmp_path / 'pre'}",
                "trainer.max_epochs=1",
                "trainer.progress=false",
                "device=cpu",
                *overrides,
            ]
        )

    metrics = run(small("ok", f"model.pretrained_from={lastfm_published}"))
    on_disk = json.loads((tmp_path / "ok" / "metrics.json").read_text())
    assert on_disk["pretrained_from"] == "LastFM-epochs-150.pt" and on_disk["pretrained_sha256"] == LASTFM_SHA256
    assert metrics["pretrain_epochs"] == 150 and not (tmp_path / "pre").exists()  # no pre-training ran

    beauty = lastfm_published.with_name("Beauty-epochs-150.pt")
    if beauty.is_file():
        with pytest.raises(SeqrecError, match=r"Beauty-epochs-150\.pt: was pre-trained on a catalogue of 12101"):
            run(small("bad", f"model.pretrained_from={beauty}"))
        assert not (tmp_path / "bad" / "metrics.json").exists()
    with pytest.raises(SeqrecError, match="stage=pretrain with model.pretrained_from"):
        run(small("stage", f"model.pretrained_from={lastfm_published}", "stage=pretrain"))
