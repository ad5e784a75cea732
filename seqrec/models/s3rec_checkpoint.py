"""Load the S3-Rec authors' published pre-trained models into :class:`~seqrec.models.S3Rec`.

Zhou et al. (CIKM 2020) released their pre-trained models (``<Name>-epochs-<E>.pt`` in the
``reproduce/`` folder of aHuiWang/CIKM2020-S3Rec, also in Li-fAngyU/CCE); the CCE paper
fine-tuned S3-Rec from them. Each file is a plain ``state_dict`` of the reference's
``S3RecModel``; this module maps it onto seqrec's parameter names (``model=s3rec
model.pretrained_from=<file>``):

=============================================================  ==============================
published key                                                  seqrec parameter
=============================================================  ==============================
``item_embeddings.weight [M + 2, d]``: 0 pad, 1..M, M+1 mask   ``item_emb.weight [N + 1, d]``
                                                               (rows by item token), ``mask_emb [d]``
``attribute_embeddings.weight [A + 1, d]``                     ``attr_emb.weight`` (ids kept)
``position_embeddings.weight [L, d]``                          ``pos_emb.weight``
``LayerNorm.{weight,bias}``                                    ``emb_norm``
``item_encoder.layer.i.attention.{query,key,value}``           ``blocks.i.qkv`` (concatenated q|k|v)
``item_encoder.layer.i.attention.dense`` / ``.LayerNorm``      ``blocks.i.attn_out`` / ``attn_norm``
``item_encoder.layer.i.intermediate.dense_1`` / ``dense_2``    ``blocks.i.ffn_in`` / ``ffn_out``
``item_encoder.layer.i.intermediate.LayerNorm``                ``blocks.i.ffn_norm``
``{aap,mip,map,sp}_norm``                                      ``{aap,mip,map,sp}_proj``
=============================================================  ==============================

Item rows are matched through the dataset's item tokens: seqrec item ``i`` (raw token ``t``)
gets published row ``int(t)``, the id of ``<Name>.txt``. The S3-Rec data files keep their ids, so
for them this is the identity. The padding rows (item 0, attribute 0) are set to zero, seqrec's
convention: the reference initialises them randomly and never trains them, and they never reach
a real position (padding keys are masked), a score or a loss. The number of attention heads is
not stored in the file; seqrec's default (2) is the reference's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from seqrec.data.fetch import file_sha256
from seqrec.errors import SeqrecError

OPTION = "model.pretrained_from"
_LAYER = "item_encoder.layer.{i}."
# published suffix under a layer -> seqrec suffix under blocks.{i}. (query/key/value handled apart)
_BLOCK_KEYS = {
    "attention.dense": "attn_out",
    "attention.LayerNorm": "attn_norm",
    "intermediate.dense_1": "ffn_in",
    "intermediate.dense_2": "ffn_out",
    "intermediate.LayerNorm": "ffn_norm",
}
_TOP_KEYS = {
    "attribute_embeddings": "attr_emb",
    "position_embeddings": "pos_emb",
    "LayerNorm": "emb_norm",
    "aap_norm": "aap_proj",
    "mip_norm": "mip_proj",
    "map_norm": "map_proj",
    "sp_norm": "sp_proj",
}
_LAYER_RE = re.compile(r"^item_encoder\.layer\.(\d+)\.")
_EPOCHS_RE = re.compile(r"epochs-(\d+)")  # the published names: <Name>-epochs-<E>.pt


def published_keys(num_blocks: int) -> set[str]:
    """Every key of a published ``S3RecModel`` state dict with ``num_blocks`` encoder layers."""
    keys = {"item_embeddings.weight", "attribute_embeddings.weight", "position_embeddings.weight"}
    keys |= {
        f"{name}.{p}"
        for name in ("LayerNorm", "aap_norm", "mip_norm", "map_norm", "sp_norm")
        for p in ("weight", "bias")
    }
    layer_modules = ("attention.query", "attention.key", "attention.value", *_BLOCK_KEYS)
    keys |= {
        f"{_LAYER.format(i=i)}{name}.{p}"
        for i in range(num_blocks)
        for name in layer_modules
        for p in ("weight", "bias")
    }
    return keys


def _error(path: Path, what: str, fix: str) -> SeqrecError:
    return SeqrecError(f"{OPTION}={path}: {what} {fix}")


def read_published(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (``torch.load(..., map_location="cpu", weights_only=True)``).

    Raises:
        SeqrecError: the path does not exist or is a folder; the file cannot be read with
            ``weights_only=True``; it holds something other than a ``{name: tensor}`` dict.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file." if path.is_dir() else "does not exist."
        raise _error(
            path,
            what,
            "Give the path of a published S3-Rec pre-trained model, e.g. "
            "LastFM-epochs-150.pt from the reproduce/ folder of aHuiWang/CIKM2020-S3Rec "
            "(relative paths are read from the working directory).",
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle, zip and weights_only errors all mean "not a state dict"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _error(
            path,
            f"is not a PyTorch state dict that loads with weights_only=True ({first}).",
            "Give the .pt file the S3-Rec code saved with torch.save(model.state_dict(), ...).",
        ) from None
    if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
        raise _error(
            path,
            "holds a training checkpoint (a dict with a 'model' entry, as seqrec's own "
            "pre-training writes), not a bare S3-Rec state dict.",
            "seqrec's own checkpoints are found by themselves (model.pretrained=true, no "
            f"{OPTION}); {OPTION} is for the published S3RecModel state dicts.",
        )
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        kind = type(state).__name__ if not isinstance(state, Mapping) else "dict with non-tensor entries"
        raise _error(
            path,
            f"holds a {kind}, not a state dict (a mapping of parameter names to tensors).",
            "Give the .pt file the S3-Rec code saved with torch.save(model.state_dict(), ...).",
        )
    return dict(state)


def _check_keys(state: Mapping[str, torch.Tensor], num_blocks: int, path: Path) -> None:
    expected = published_keys(num_blocks)
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if not missing and not unexpected:
        return
    layers = {int(m.group(1)) for m in map(_LAYER_RE.match, state) if m}
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} key(s) ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})")
    if unexpected:
        parts.append(
            f"has {len(unexpected)} unexpected key(s) "
            f"({', '.join(unexpected[:4])}{', ...' if len(unexpected) > 4 else ''})"
        )
    blocks = (
        f" The file has {len(layers)} encoder layer(s), seqrec's model {num_blocks} (model.num_blocks)."
        if layers and len(layers) != num_blocks
        else ""
    )
    raise _error(
        path,
        f"is not a state dict of S3-Rec's S3RecModel with {num_blocks} encoder layers: it "
        f"{' and '.join(parts)}.{blocks}",
        "Use an unmodified published checkpoint, and set model.num_blocks to its number of layers.",
    )


def _item_rows(
    item_tokens: np.ndarray | None, n_items: int, n_published: int, dataset: str, path: Path
) -> torch.Tensor:
    """``[N]`` published row of seqrec items 1..N (through their raw tokens)."""
    if n_published != n_items:
        raise _error(
            path,
            f"was pre-trained on a catalogue of {n_published} items (item_embeddings has "
            f"{n_published + 2} rows: padding, items, mask token), but dataset '{dataset}' has "
            f"{n_items} items.",
            "Use the checkpoint made for this dataset (e.g. LastFM-epochs-150.pt "
            "for dataset=lastfm, Beauty-epochs-150.pt for dataset=beauty).",
        )
    if item_tokens is None:
        return torch.arange(1, n_items + 1)
    tokens = np.asarray(item_tokens[1:], dtype=str)
    ids = np.array([int(t) if t.isdecimal() else -1 for t in tokens], dtype=np.int64)
    bad = np.flatnonzero((ids < 1) | (ids > n_published))
    if len(bad) or len(np.unique(ids)) != len(ids):
        example = f"e.g. {str(tokens[bad[0]])!r}" if len(bad) else "some repeat"
        raise _error(
            path,
            f"has rows for the item ids 1..{n_published} of an S3-Rec data file, but "
            f"dataset '{dataset}' has item tokens that are not such ids ({example}).",
            "Load the published checkpoints only with the S3-Rec data file they were "
            "pre-trained on (dataset=lastfm, beauty, toys, ...).",
        )
    return torch.from_numpy(ids)


# long: a flat table of the authors' parameter names to seqrec's, with the shape checks beside it
def convert_published(
    state: Mapping[str, torch.Tensor],
    model: torch.nn.Module,
    item_tokens: np.ndarray | None = None,
    dataset: str = "?",
    path: str | Path = "<state dict>",
) -> dict[str, torch.Tensor]:
    """seqrec's state dict for ``model`` from a published ``S3RecModel`` state dict.

    Args:
        state: the published state dict (see the module docstring for its keys).
        model: an :class:`~seqrec.models.S3Rec` (its sizes are checked against the file's).
        item_tokens: ``[N + 1]`` raw token of each seqrec item index (``SequenceData.item_tokens``;
            integer ids of the S3-Rec file); None = identity.
        dataset, path: named in error messages.

    Returns:
        ``{seqrec name: tensor}`` covering every entry of ``model.state_dict()``.

    Raises:
        SeqrecError: missing or unexpected keys, another item or attribute count, or another size
            (hidden size, positions, feed-forward width); one paragraph naming the file and what differs.
    """
    path = Path(path)
    _check_keys(state, len(model.blocks), path)
    items = state["item_embeddings.weight"]  # [M + 2, d]
    attrs = state["attribute_embeddings.weight"]  # [A + 1, d]
    if items.shape[1] != model.hidden_size:
        raise _error(
            path,
            f"has hidden size {items.shape[1]} (item_embeddings is {tuple(items.shape)}), "
            f"seqrec's model {model.hidden_size}.",
            f"Set model.hidden_size={items.shape[1]}.",
        )
    rows = _item_rows(item_tokens, model.n_items, items.shape[0] - 2, dataset, path)
    if attrs.shape[0] != model.n_attributes + 1:
        raise _error(
            path,
            f"was pre-trained with {attrs.shape[0] - 1} attributes (attribute_embeddings has "
            f"{attrs.shape[0]} rows), but dataset '{dataset}' has {model.n_attributes}.",
            "Use the checkpoint and the item2attributes file of the same dataset.",
        )
    converted = {
        "item_emb.weight": torch.cat([torch.zeros_like(items[:1]), items[rows]]),
        "mask_emb": items[-1],
        "attr_emb.weight": torch.cat([torch.zeros_like(attrs[:1]), attrs[1:]]),
    }
    for old, new in _TOP_KEYS.items():
        for p in ("weight", "bias"):
            if f"{old}.{p}" in state and f"{new}.{p}" not in converted:
                converted[f"{new}.{p}"] = state[f"{old}.{p}"]
    for i in range(len(model.blocks)):
        layer = _LAYER.format(i=i)
        for p in ("weight", "bias"):
            converted[f"blocks.{i}.qkv.{p}"] = torch.cat(
                [state[f"{layer}attention.{name}.{p}"] for name in ("query", "key", "value")]
            )  # [3d, ...]
            for old, new in _BLOCK_KEYS.items():
                converted[f"blocks.{i}.{new}.{p}"] = state[f"{layer}{old}.{p}"]
    target = model.state_dict()
    for name, tensor in converted.items():
        if tensor.shape != target[name].shape:
            raise _error(
                path,
                f"does not fit seqrec's S3-Rec: {name} would get shape {tuple(tensor.shape)} "
                f"from the file but the model has {tuple(target[name].shape)} (model.hidden_size="
                f"{model.hidden_size}, dataset.max_len={model.max_len}, feed-forward width "
                f"{4 * model.hidden_size}).",
                "Set the model sizes and dataset.max_len to the checkpoint's (S3-Rec: 64, 50).",
            )
    return converted


def load_published(
    model: torch.nn.Module, path: str | Path, item_tokens: np.ndarray | None = None, dataset: str = "?"
) -> dict:
    """Load the published pre-trained S3-Rec model in ``path`` into ``model`` (in place).

    Args:
        model: an :class:`~seqrec.models.S3Rec` built for the dataset (any device).
        path: the published ``state_dict`` file (``model.pretrained_from``).
        item_tokens, dataset: see :func:`convert_published`.

    Returns:
        Facts for ``metrics.json``: ``pretrained`` (True), ``pretrained_from`` (the file name),
        ``pretrained_sha256``, ``pretrain_checkpoint`` (the path) and ``pretrain_epochs`` (from
        the published file name, ``<Name>-epochs-<E>.pt``; None for other names: the state dict
        itself does not record it).

    Raises:
        SeqrecError: see :func:`read_published` and :func:`convert_published`.
    """
    path = Path(path)
    converted = convert_published(read_published(path), model, item_tokens, dataset, path)
    model.load_state_dict(converted, strict=True)
    epochs = _EPOCHS_RE.search(path.name)
    return {
        "pretrained": True,
        "pretrained_from": path.name,
        "pretrained_sha256": file_sha256(path),
        "pretrain_checkpoint": str(path),
        "pretrain_epochs": int(epochs.group(1)) if epochs else None,
    }


__all__ = ["convert_published", "load_published", "published_keys", "read_published"]
