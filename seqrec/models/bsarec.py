"""BSARec (Shin, Choi, Wi, Park, "An Attentive Inductive Bias for Sequential Recommendation beyond
the Self-Attention", AAAI 2024), and a causal variant of it.

SASRec's encoder in which each block's attention sub-layer is mixed with a frequency filter:
``x ← α · LN(x + Dropout(F(x))) + (1 - α) · LN(x + Dropout(MHA(x)))``, then the feed-forward
sub-layer. The filter keeps the ``c // 2 + 1`` lowest frequencies of the window over the sequence
axis and rescales the rest by a learned β² per channel: ``F(x) = low(x) + β² (x - low(x))``
(public code: yehjin-shin/BSARec, ``FrequencyLayer``, ``BSARecBlock``; per-dataset ``α``, ``c`` and
heads in ``conf/experiment/bsarec_*.yaml``).

The original filter is an FFT over the whole input window (padding included, as the reference
code pads every input to ``max_len``), so the output at position t depends on the items after t:
the model is not causal (``causal = False``). Trained with a loss over every position (CCE, BCE)
it would see its own targets; seqrec's causality guard refuses that, and BSARec is trained as
published, with last-position CE on prefix samples (``loss=ce trainer.samples=prefixes``).

The reference's padding item row is random (its N(0, 0.02) initialisation overwrites the zero row
``padding_idx`` sets), and the window FFT carries it into every real position; seqrec's is zero, as
in SASRec, unless ``random_padding_row=True`` keeps that draw. On a padded LastFM-sized batch at
initialisation the random row moves the last hidden state by about 26% (relative norm); kept fixed,
it changes little after training (LastFM seed 42: NDCG@10 0.0429 against 0.0430,
``docs/results.md``). The reference does not keep it fixed: its CE logits cover the whole
embedding table, so the padding row is a softmax class that is never a target and CE trains it
(``padding_idx`` stops only the lookup's gradient); ``padding_class=True`` does the same
(:func:`seqrec.models.scoring.training_table`).

``causal_filter=True`` replaces the FFT by a causal convolution with the same impulse response:
the FFT low-pass is a circulant matrix ``P`` over the L-position window, and its last row, the
output at the window's last position, is the convolution ``out_t = Σ_s p_s x_{t-s}`` (s = 0..L-1,
``p`` the first column of ``P``). Applied at every position t with ``x`` before the window taken
as 0, each position sees items up to itself only, so CCE can train the model. Padding positions
are left out of the sum: they hold no item, and from the second block on their states come from
attention that, with every key masked, looks at every position (the future included). Without
padding in the window the output at its last position equals BSARec's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqrec.models.sasrec import SASRec, TransformerBlock
from seqrec.models.scoring import check_padding_class, check_window
from seqrec.options import DropoutRate, PositiveFloat, PositiveInt


def low_pass_kernel(length: int, c: int) -> torch.Tensor:
    """``[L]``: the first column of the circulant low-pass ``irfft(mask · rfft(x))`` over L
    positions that keeps frequencies ``0 .. c // 2`` (BSARec's ``c``), i.e. its impulse response."""
    impulse = torch.zeros(length, dtype=torch.float64)
    impulse[0] = 1.0
    spectrum = torch.fft.rfft(impulse, norm="ortho")
    spectrum[c // 2 + 1 :] = 0
    return torch.fft.irfft(spectrum, n=length, norm="ortho")  # the ortho pair is unitary: P's column


class FrequencyFilter(nn.Module):
    """BSARec's filter sub-layer ``LN(x + Dropout(low(x) + β² (x - low(x))))`` over ``[B, L, d]``.

    Args:
        hidden_size: d.
        c: frequencies kept: ``c // 2 + 1`` lowest (BSARec's ``--c``).
        dropout: dropout on the filtered signal.
        causal: the causal-convolution low-pass (module docstring) instead of the window FFT.
        max_len: L, the window the filter is defined on.
    """

    def __init__(self, hidden_size: int, c: int, dropout: float, causal: bool, max_len: int):
        super().__init__()
        self.c, self.causal, self.dropout = c, causal, dropout
        self.sqrt_beta = nn.Parameter(torch.randn(1, 1, hidden_size))
        self.norm = nn.LayerNorm(hidden_size, eps=1e-12)
        kernel = low_pass_kernel(max_len, c).float()  # [L]
        rows = torch.arange(max_len)
        lag = rows[:, None] - rows[None, :]  # [L, L]: t - s
        # lower-triangular Toeplitz T[t, s] = p[t - s] (s <= t): the low-pass of the window ending at t
        self.register_buffer("causal_matrix", torch.where(lag >= 0, kernel[lag.clamp(min=0)], 0.0), persistent=False)

    def low(self, x: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        """The low-pass part of ``x [B, L, d]``; ``real [B, L]`` (bool) marks the item positions the
        causal filter sums over (default: all)."""
        if self.causal:
            L = x.shape[1]
            if real is not None:
                x = x * real.unsqueeze(-1).to(x.dtype)
            return torch.einsum("ts,bsd->btd", self.causal_matrix[-L:, -L:].to(x.dtype), x)  # [B, L, d]
        spectrum = torch.fft.rfft(x, dim=1, norm="ortho")  # [B, L//2+1, d]
        spectrum[:, self.c // 2 + 1 :, :] = 0
        return torch.fft.irfft(spectrum, n=x.shape[1], dim=1, norm="ortho")  # [B, L, d]

    def forward(self, x: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        low = self.low(x, real)
        filtered = low + self.sqrt_beta**2 * (x - low)  # [B, L, d]
        return self.norm(x + F.dropout(filtered, self.dropout, self.training))


class BSARecBlock(TransformerBlock):
    """A transformer block whose attention sub-layer is mixed with :class:`FrequencyFilter`."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float, alpha: float, c: int, causal: bool,
                 max_len: int):  # fmt: skip
        super().__init__(hidden_size, num_heads, dropout)
        self.alpha = alpha
        self.filter = FrequencyFilter(hidden_size, c, dropout, causal, max_len)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        real = attn_bias[:, 0, -1, :] == 0  # [B, L]: the keys the last (real) position may attend to
        mixed = self.alpha * self.filter(x, real) + (1 - self.alpha) * self.attend(x, attn_bias)  # [B, L, d]
        return self.feed_forward(mixed)


class BSARec(SASRec):
    """BSARec; returns a hidden state at every position like SASRec (same embeddings, attention,
    feed-forward, init and tied output table).

    Args:
        n_items, max_len, hidden_size, num_blocks, num_heads, dropout, init_std, tie_output: as
            :class:`~seqrec.models.SASRec` (BSARec: 1 head on LastFM and Beauty).
        alpha: weight of the filter against attention (LastFM 0.9, Beauty 0.7).
        c: frequencies kept by the low-pass, ``c // 2 + 1`` (LastFM 3, Beauty 5).
        causal_filter: the causal variant of the filter (module docstring); False is the
            published, non-causal model.
        random_padding_row: start the padding item row (id 0) from its N(0, init_std) draw, as the
            reference code does, instead of zero; the lookup never trains it (``padding_idx``).
            Item 0 is never a candidate or a target.
        padding_class: with ``random_padding_row``, the padding row is also a never-target class
            of full-softmax training (CE, CCE), so those losses train it, as in the reference
            code (module docstring). Ranking still covers items 1..N only.

    Inputs shorter than ``max_len`` are left-padded to it inside :meth:`forward`, as the reference
    code pads every input: the FFT over the window depends on the window's length, so a trimmed
    batch would change the outputs.

    Raises:
        ValueError: ``alpha`` outside [0, 1], ``c`` < 1, or ``padding_class`` without
            ``random_padding_row`` or with ``tie_output=False``.
    """

    @property
    def name(self) -> str:
        """``bsarec``, or ``bsarec_causal`` with ``causal_filter`` (the config's ``model=`` choice):
        the two are different models, and reports key runs on this name."""
        return "bsarec_causal" if self.causal_filter else "bsarec"

    def __init__(self, n_items: int, max_len: int = 50, hidden_size: PositiveInt = 64, num_blocks: PositiveInt = 2,
                 num_heads: PositiveInt = 1, dropout: DropoutRate = 0.5, init_std: PositiveFloat = 0.02,
                 alpha: float = 0.9, c: PositiveInt = 3, causal_filter: bool = False, tie_output: bool = True,
                 random_padding_row: bool = False, padding_class: bool = False):  # fmt: skip
        check_padding_class(padding_class, random_padding_row, tie_output)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha={alpha} is not valid: the filter's weight must be in [0, 1]")
        if c < 1:
            raise ValueError(f"c={c} is not valid: the low-pass keeps c // 2 + 1 >= 1 frequencies")
        self.causal_filter = causal_filter
        super().__init__(n_items, max_len, hidden_size, num_blocks, num_heads, dropout, init_std, False, tie_output)
        blocks = [BSARecBlock(hidden_size, num_heads, dropout, alpha, c, causal_filter, max_len)
                  for _ in range(num_blocks)]  # fmt: skip
        self.blocks = nn.ModuleList(blocks)
        for block in self.blocks:  # SASRec's init for the new blocks; the filter's β stays N(0, 1) as published
            beta = block.filter.sqrt_beta.detach().clone()
            block.apply(self._init_weights)
            block.filter.sqrt_beta.data.copy_(beta)
        self.random_padding_row, self.padding_class = random_padding_row, padding_class
        if random_padding_row:
            with torch.no_grad():
                self.item_emb.weight[0].normal_(0.0, init_std)

    def extra_classes(self) -> torch.Tensor:
        """``[1, d]`` the padding row with ``padding_class`` (trained as a never-target class by
        full-softmax losses), else ``[0, d]``; see :func:`seqrec.models.scoring.training_table`."""
        return self.item_emb.weight[: int(self.padding_class)]

    @property
    def causal(self) -> bool:
        """True only with ``causal_filter``: the window FFT mixes every position into every other."""
        return self.causal_filter

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        """``item_seq [B, L]`` (left-padded) → hidden states ``[B, L, d]``.

        Raises:
            ValueError: ``L > max_len`` (the filter's window).
        """
        L = item_seq.shape[1]
        check_window(L, self.max_len)
        full = F.pad(item_seq, (self.max_len - L, 0))  # [B, max_len]: the window the filter is defined on
        return self.encode(self.embed(full), full)[:, -L:]
