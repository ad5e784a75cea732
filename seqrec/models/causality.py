"""The causality guard: a model trained on every position must not see the items after it.

A loss with ``positions="all"`` (CCE, Eq. 26; BCE, Eq. 20; sampled losses) asks the hidden state
at position t to predict the item at t + 1, the input at t + 1. A model whose output at t depends
on items after t (bidirectional attention, an FFT filter over the whole window as in BSARec,
FMLP-Rec or WEARec) sees its own target there, learns to copy it, and its numbers are void —
without any error, and often with a suspiciously good training loss.

A model declares ``causal`` (``True``: the output at t depends on items ≤ t only). Before a run
trains it with an all-position loss, :func:`check_causal` refuses a model that declares
``causal = False`` and tests every other one on a small random batch: the items after a position
t are replaced, and the hidden states up to t must not move. A model that fails is refused with
one paragraph saying why and what to use instead. The check uses its own generator and
evaluation mode, so it takes nothing from the run's random streams.
"""

from __future__ import annotations

import torch

from seqrec.errors import ConfigError

# tolerance of the comparison: float32 reductions over an unchanged prefix are exact,
# but a model may legitimately batch its work differently; anything above this is a dependence
ATOL = 1e-5
# widest test batch: as wide as training input up to this, so long windows stay cheap to check
MAX_WIDTH = 256


def future_dependence(model: torch.nn.Module, n_items: int, max_len: int, batch: int = 4, seed: int = 0) -> float:
    """The largest change of a real position's hidden state at t or before when the items after
    t change.

    The test batch looks like training input: ``max_len`` wide (at most :data:`MAX_WIDTH`),
    one full row and the others left-padded to random lengths, because a model can leak through
    the way it treats padding (an FFT over the padded window, a filter summing over padding
    states) as well as through its attention.

    Args:
        model: ``forward(item_seq [B, L]) -> hidden [B, L, d]``.
        n_items: N, item ids are drawn from 1..N.
        max_len: L of the test batch.
        batch: sequences in the test batch.
        seed: seed of the check's own generator.

    Returns:
        ``max |h(x)[b, s] - h(x')[b, s]|`` over real positions ``s <= t`` and three cut points t,
        where ``x'`` equals ``x`` up to t and has other items at the real positions after it
        (0.0 for a causal model, and for ``max_len`` 1, whose one position has no future the
        model could be given).
    """
    if max_len < 2:
        return 0.0
    width = min(int(max_len), MAX_WIDTH)
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    worst = 0.0
    try:
        with torch.no_grad():
            seq = torch.randint(1, n_items + 1, (batch, width), generator=gen)  # [B, L]
            lengths = torch.randint(2, width + 1, (batch,), generator=gen)
            lengths[0] = width  # one row without padding
            real = torch.arange(width) >= width - lengths.unsqueeze(1)  # [B, L], left padding
            seq = seq * real
            hidden = model(seq.to(device)).float()  # [B, L, d]
            for t in sorted({0, width // 2, width - 2}):
                future = real.clone()
                future[:, : t + 1] = False  # the real positions after t
                other = torch.where(future, torch.randint(1, n_items + 1, seq.shape, generator=gen), seq)
                moved = (model(other.to(device)).float() - hidden)[:, : t + 1]  # [B, t+1, d]
                moved = moved[real[:, : t + 1].to(device)]  # [positions, d], real ones only
                if moved.numel():
                    worst = max(worst, float(moved.abs().max()))
    finally:
        model.train(was_training)
    return worst


def check_causal(model: torch.nn.Module, n_items: int, max_len: int, loss_name: str) -> None:
    """Refuse to train ``model`` with an all-position loss unless its outputs are causal.

    Args:
        model: the built model (its ``causal`` attribute, when present, is its declaration).
        n_items, max_len: the data's sizes (for the test batch).
        loss_name: the run's loss name, for the message.

    Raises:
        ConfigError: the model declares ``causal = False``, or changing the items after a
            position changed its hidden states up to that position.
    """
    declared = getattr(model, "causal", None)
    name = getattr(model, "name", type(model).__name__)
    advice = (
        "Train it with a last-position loss (loss.positions=last, e.g. loss=ce), best on every "
        "prefix of the sequences as the published models are (loss=ce trainer.samples=prefixes; "
        "experiment=bsarec_lastfm or bsarec_beauty), or use a causal variant of the model "
        "(model=bsarec_causal)."
    )
    if declared is False:
        raise ConfigError(
            f"model {name} declares causal = False: its output at position t depends on items after t. "
            f"loss={loss_name} trains every position to predict the next item, which such a model sees, so "
            f"its numbers would be void. {advice}"
        )
    moved = future_dependence(model, n_items, max_len)
    if moved > ATOL:
        claim = "declares causal = True, but" if declared else "does not declare whether it is causal, and"
        raise ConfigError(
            f"model {name} {claim} changing the items after a position t changed its hidden states at "
            f"positions up to t by up to {moved:.3g}: its output at t sees the future. loss={loss_name} trains "
            f"every position to predict the next item, which this model can read from its input, so its "
            f"numbers would be void. {advice}"
        )
