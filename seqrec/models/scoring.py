"""The model contract's scoring side: one scorer for training, evaluation, RQ3 and recommendation.

Every model maps ``item_seq [B, L]`` (left-padded, 0 = padding) to hidden states ``[B, L, d]``
and exposes ``output_table() -> [N, d]``, the output vectors of the real items 1..N in id order
(tied models: the input embedding without its padding row; ``model.tie_output=false``: a separate
table, as in gSASRec). The score of item ``i`` for hidden state ``h`` is ``h · output_table()[i - 1]``
(the CCE paper's prediction layer, "Problem Statement": a dot product, no bias).

"Row / column ``c`` is item ``c + 1``" is encoded here and nowhere else: :func:`item_rows` maps
item ids to rows of the table (= columns of the scores, = class indices of a softmax),
:func:`row_items` maps back.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch


def item_rows(items: torch.Tensor) -> torch.Tensor:
    """Row of ``output_table()`` (column of :func:`score_items`, softmax class) of item ids 1..N."""
    return items - 1


def row_items(rows: torch.Tensor) -> torch.Tensor:
    """Item ids of rows/columns ``0..N-1`` (the inverse of :func:`item_rows`)."""
    return rows + 1


def tied_table(item_emb: torch.nn.Embedding) -> torch.Tensor:
    """``[N, d]`` output table of a model tied to its input embedding ``[N + 1, d]``: the rows of
    items 1..N, padding row 0 dropped (a view, so gradients flow into the embedding)."""
    return item_emb.weight[1:]


def check_window(length: int, max_len: int) -> None:
    """A model that pads every input to its ``max_len`` window takes no longer input.

    Raises:
        ValueError: ``length > max_len``.
    """
    if length > max_len:
        raise ValueError(f"an input of {length} positions is longer than the model's window max_len={max_len}")


def check_padding_class(padding_class: bool, random_padding_row: bool, tie_output: bool) -> None:
    """The models' ``padding_class`` option needs the reference's padding row and a tied table.

    Raises:
        ValueError: ``padding_class`` without ``random_padding_row`` (a trained zero row stops
            being a no-op input while batches are still trimmed) or with ``tie_output=False``
            (a separate output table has no padding row to train).
    """
    if padding_class and not random_padding_row:
        raise ValueError(
            "padding_class=true needs random_padding_row=true: the padding row it trains is the "
            "reference code's input at every padded position; set both, or neither"
        )
    if padding_class and not tie_output:
        raise ValueError(
            "padding_class=true needs tie_output=true: the padding row is a class only where the "
            "output table is the input embedding table"
        )


def training_table(model: torch.nn.Module, full_softmax: bool) -> torch.Tensor:
    """The classes a training loss scores against: ``output_table()`` ``[N, d]`` (row c = item
    c + 1), and for a full-softmax loss (CE, CCE) also the model's never-target classes
    ``extra_classes() -> [E, d]`` appended after the items, ``[N + E, d]``.

    A never-target class only enlarges the softmax's denominator, so training pushes its row away
    from the hidden states; the CCE and BSARec reference codes score their whole embedding table,
    padding row included, which is how their padding input is trained (``model.padding_class``).
    Item rows keep their indices, so targets are still :func:`item_rows` of the item ids; ranking
    (:func:`score_items`) never sees the extra rows.
    """
    table = model.output_table()  # [N, d]
    extra = getattr(model, "extra_classes", None)
    rows = extra() if full_softmax and extra is not None else None
    return table if rows is None or rows.shape[0] == 0 else torch.cat([table, rows])  # [N + E, d]


def score_items(model: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Scores of every item: ``hidden [B, d] -> [B, N]`` float32, column ``c`` = item ``c + 1``.

    ``hidden.float() @ model.output_table().float().T``; under autocast the inputs are cast back
    to float32 first, so scores (and the tie rule applied to them) are float32.

    Raises:
        ValueError: ``hidden`` is not ``[B, d]`` with the table's ``d``.
    """
    table = model.output_table()  # [N, d]
    if hidden.dim() != 2 or hidden.shape[1] != table.shape[1]:
        raise ValueError(f"hidden must be [B, {table.shape[1]}], got {tuple(hidden.shape)}.")
    return hidden.float() @ table.float().T  # [B, N]


def last_hidden(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> torch.Tensor:
    """Hidden state after the most recent item: ``inputs [B, L]`` (left-padded) ``-> [B, d]``.

    Args:
        autocast: optional factory of a mixed-precision context (e.g. bf16) for the forward pass.
    """
    with autocast() if autocast is not None else contextlib.nullcontext():
        return model(inputs)[:, -1]  # [B, d]
