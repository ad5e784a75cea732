"""GRU4Rec (Hidasi et al., ICLR 2016) as configured in the CCE paper's public code.

Item embedding (64) → dropout (0.5) → one GRU layer (hidden 128, **no bias**) → linear projection
back to 64, applied at every position (CCE paper, Eqs. 3-6 and Fig. 1a). Initialisation as in the
reference code: Xavier-normal item embeddings, Xavier-uniform GRU weights.

The GRU has no bias and by default the padding embedding is zero, so a left-padded prefix keeps
the hidden state at exactly zero (z = r = 1/2, ĥ = tanh(0) = 0): left padding is a no-op and
trimming it leaves every real position's output unchanged.

The reference code's padding row is not zero: its Xavier-normal initialisation overwrites the zero
row ``padding_idx`` sets, and every input, padded to ``max_len``, runs the GRU through that row
before its first item, which gives each sequence a non-zero starting state that depends on its
padding length. ``random_padding_row=True`` reproduces that: the row keeps its draw (the lookup
never trains it) and :meth:`GRU4Rec.forward` pads every input to ``max_len``, since trimming is then
no longer a no-op. With CE and CCE the reference also trains the row: its logits cover the whole
embedding table, so the padding row is a softmax class that is never a target (``padding_idx``
stops only the gradient of the lookup); ``padding_class=True`` does the same
(:func:`seqrec.models.scoring.training_table`). The reference's table has one more
row, S3-Rec's mask token, never an input here: one class more among N, left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqrec.models.scoring import check_padding_class, check_window, tied_table
from seqrec.options import DropoutRate, PositiveInt


class GRU4Rec(nn.Module):
    """Recurrent sequential recommender returning a hidden state at every position.

    Args:
        n_items: N, number of real items (ids 1..N, 0 = padding), passed at build time.
        max_len: input window; accepted for a common model signature (the GRU has no positions).
        embedding_size: item embedding size e (64); also the output size, so scores are
            ``hidden @ output_table().T``.
        hidden_size: GRU hidden size (128).
        num_layers: GRU layers (1).
        dropout: dropout on the input embeddings (0.5).
        tie_output: score items with the input embedding table (the paper; default) or, if
            False, with a separate Xavier-normal output table ``[N, e]``.
        random_padding_row: start the padding row (id 0) from its Xavier-normal draw and pad every
            input to ``max_len``, as the reference code does (module docstring); the lookup never
            trains it. False (default) zeroes the row, so padding is a no-op. Item 0 is never a
            candidate or a target.
        padding_class: with ``random_padding_row``, the padding row is also a never-target class of
            full-softmax training (CE, CCE), so those losses train it, as in the reference code
            (module docstring). Ranking still covers items 1..N only.

    Raises:
        ValueError: ``padding_class`` without ``random_padding_row`` (a trained zero row would
            stop being a no-op input while batches are still trimmed) or with ``tie_output=False``
            (the separate output table has no padding row).
    """

    name = "gru4rec"
    causal = True  # a recurrence reads left to right (seqrec.models.causality)

    def __init__(
        self,
        n_items: int,
        max_len: int = 50,
        embedding_size: PositiveInt = 64,
        hidden_size: PositiveInt = 128,
        num_layers: PositiveInt = 1,
        dropout: DropoutRate = 0.5,
        tie_output: bool = True,
        random_padding_row: bool = False,
        padding_class: bool = False,
    ):
        super().__init__()
        check_padding_class(padding_class, random_padding_row, tie_output)
        self.n_items = n_items
        self.max_len = max_len
        # the returned hidden states are embedding_size wide (projected back from the GRU's state,
        # gru_size = the config's hidden_size, so they score against the item table)
        self.embedding_size, self.gru_size = embedding_size, hidden_size
        self.item_emb = nn.Embedding(n_items + 1, embedding_size, padding_idx=0)
        self.emb_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(embedding_size, hidden_size, num_layers=num_layers, bias=False, batch_first=True)
        self.proj = nn.Linear(hidden_size, embedding_size)
        nn.init.xavier_normal_(self.item_emb.weight)
        self.random_padding_row, self.padding_class = random_padding_row, padding_class
        if not random_padding_row:
            with torch.no_grad():
                self.item_emb.weight[0].zero_()
        for param in self.gru.parameters():
            nn.init.xavier_uniform_(param)
        # created after the encoder's init, so tie_output=false draws nothing before it and the
        # tied and untied models start from the same encoder weights
        self.output_emb = (
            None if tie_output else nn.Parameter(nn.init.xavier_normal_(torch.empty(n_items, embedding_size)))
        )

    def output_table(self) -> torch.Tensor:
        """``[N, e]`` output vectors of items 1..N (row r = item r + 1; see :mod:`seqrec.models.scoring`)."""
        return tied_table(self.item_emb) if self.output_emb is None else self.output_emb

    def extra_classes(self) -> torch.Tensor:
        """``[1, e]`` the padding row with ``padding_class`` (trained as a never-target class by
        full-softmax losses), else ``[0, e]``; see :func:`seqrec.models.scoring.training_table`."""
        return self.item_emb.weight[: int(self.padding_class)]

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        """``item_seq [B, L]`` (left-padded, 0 = padding) → hidden states ``[B, L, e]``.

        Raises:
            ValueError: ``L > max_len`` with ``random_padding_row`` (the padded window is ``max_len``).
        """
        L = item_seq.shape[1]
        if self.random_padding_row:  # the reference's input: every sequence padded to max_len
            check_window(L, self.max_len)
            item_seq = F.pad(item_seq, (self.max_len - L, 0))
        x = self.emb_dropout(self.item_emb(item_seq))  # [B, L or max_len, e]
        out, _ = self.gru(x)  # [B, L or max_len, hidden]
        return self.proj(out[:, -L:])  # [B, L, e]
