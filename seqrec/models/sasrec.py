"""SASRec (Kang & McAuley, ICDM 2018) as implemented in the S3-Rec / CCE public code.

The encoder follows the paper's code (S3-Rec's ``modules.py``), which the CCE paper used for its
numbers, rather than Eq. 19 of the CCE paper: item + learned absolute position embeddings →
LayerNorm → dropout, then ``num_blocks`` *post*-LayerNorm transformer blocks
(``x = LN(x + Dropout(MHA(x)))``, ``x = LN(x + Dropout(FFN(x)))``) with a GELU feed-forward of
width 4·d. Attention is causal and also masks padding keys. All weights start from N(0, 0.02).
The prediction layer is the item embedding table itself (tied, no bias; CCE paper, "Problem
Statement"), so the model returns hidden states and exposes ``output_table()``; with
``tie_output=False`` it is a separate ``[N, d]`` table instead (as in gSASRec).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqrec.models.scoring import tied_table
from seqrec.options import DropoutRate, PositiveFloat, PositiveInt

# Added to masked attention logits. Finite (as in the reference code), so a query whose keys are
# all masked (a padding position) gets uniform attention instead of NaN; exp(-1e4) is exactly 0
# in float32, so masked keys never influence a real position.
MASK_VALUE = -1e4


class TransformerBlock(nn.Module):
    """One post-LN block: multi-head self-attention and a GELU feed-forward network.

    Args:
        hidden_size: d, the model width.
        num_heads: attention heads; must divide ``hidden_size``.
        dropout: dropout on attention probabilities and after each sub-layer.
        layer_norm_eps: LayerNorm epsilon (1e-12 in the reference code).
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float, layer_norm_eps: float = 1e-12):
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of num_heads {num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.attn_out = nn.Linear(hidden_size, hidden_size)
        self.attn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.ffn_in = nn.Linear(hidden_size, 4 * hidden_size)
        self.ffn_out = nn.Linear(4 * hidden_size, hidden_size)
        self.ffn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def attend(self, x: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        """The attention sub-layer ``LN(x + Dropout(MHA(x)))``: x [B, L, d] → [B, L, d]."""
        B, L, d = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.num_heads, d // self.num_heads).unbind(2)  # 3 × [B, L, H, d/H]
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, L, d/H]
        ctx = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_bias.to(q.dtype), dropout_p=self.dropout if self.training else 0.0
        )  # [B, H, L, d/H]
        ctx = ctx.transpose(1, 2).reshape(B, L, d)  # [B, L, d]
        return self.attn_norm(x + F.dropout(self.attn_out(ctx), self.dropout, self.training))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The feed-forward sub-layer ``LN(x + Dropout(FFN(x)))``: x [B, L, d] → [B, L, d]."""
        h = self.ffn_out(F.gelu(self.ffn_in(x)))  # [B, L, d]
        return self.ffn_norm(x + F.dropout(h, self.dropout, self.training))

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        """x: [B, L, d]; attn_bias: [B, 1, L, L] additive (0 or MASK_VALUE). Returns [B, L, d]."""
        return self.feed_forward(self.attend(x, attn_bias))


class SASRec(nn.Module):
    """Self-attentive sequential recommender returning a hidden state at every position.

    Args:
        n_items: N, number of real items; ids are 1..N and 0 is padding (passed at build time
            from the dataset, never typed in a config).
        max_len: L_max, the input window (50 in the paper); position ids are 0..L_max-1 and the
            last column of any (possibly trimmed) left-padded input is position L_max-1.
        hidden_size: d (64).
        num_blocks: transformer blocks (2).
        num_heads: attention heads (2).
        dropout: dropout rate everywhere (0.5).
        init_std: std of the N(0, init_std) weight init (0.02).
        bidirectional: if True, attention is not causal (used by S3-Rec pre-training only).
        tie_output: score items with the input embedding table (the paper; default) or, if
            False, with a separate output table ``[N, d]`` initialised like it (gSASRec).

    Inputs to :meth:`forward` are left-padded item ids ``[B, L]`` with ``L <= max_len``;
    trimming common left padding leaves every real position's output unchanged.
    """

    name = "sasrec"

    def __init__(
        self,
        n_items: int,
        max_len: int = 50,
        hidden_size: PositiveInt = 64,
        num_blocks: PositiveInt = 2,
        num_heads: PositiveInt = 2,
        dropout: DropoutRate = 0.5,
        init_std: PositiveFloat = 0.02,
        bidirectional: bool = False,
        tie_output: bool = True,
    ):
        super().__init__()
        self.n_items = n_items
        self.max_len = max_len
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.item_emb = nn.Embedding(n_items + 1, hidden_size, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, hidden_size)
        self.emb_norm = nn.LayerNorm(hidden_size, eps=1e-12)
        self.emb_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(hidden_size, num_heads, dropout) for _ in range(num_blocks))
        self.init_std = init_std
        self.apply(self._init_weights)
        # created after the encoder's init, so tie_output=false draws nothing before it and the
        # tied and untied models start from the same encoder weights
        self.output_emb = None if tie_output else nn.Parameter(torch.empty(n_items, hidden_size).normal_(0.0, init_std))

    def output_table(self) -> torch.Tensor:
        """``[N, d]`` output vectors of items 1..N (row r = item r + 1; see :mod:`seqrec.models.scoring`)."""
        return tied_table(self.item_emb) if self.output_emb is None else self.output_emb

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()

    def attention_bias(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Additive attention mask ``[B, 1, L, L]``: padding keys and (unless bidirectional) future keys."""
        L = item_seq.size(1)
        allowed = (item_seq > 0)[:, None, None, :]  # [B, 1, 1, L] keys that are real items
        if not self.bidirectional:
            causal = torch.ones(L, L, dtype=torch.bool, device=item_seq.device).tril()  # [L, L]
            allowed = allowed & causal
        zero = torch.zeros((), device=item_seq.device)
        return torch.where(allowed, zero, torch.full((), MASK_VALUE, device=item_seq.device))

    def embed(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Item + position embeddings, LayerNorm and dropout: ``[B, L] -> [B, L, d]``."""
        L = item_seq.size(1)
        if L > self.max_len:
            raise ValueError(f"input length {L} exceeds max_len {self.max_len}")
        positions = torch.arange(self.max_len - L, self.max_len, device=item_seq.device)  # [L]
        x = self.item_emb(item_seq) + self.pos_emb(positions)  # [B, L, d]
        return self.emb_dropout(self.emb_norm(x))

    def encode(self, x: torch.Tensor, item_seq: torch.Tensor) -> torch.Tensor:
        """Run the blocks on embedded inputs ``x [B, L, d]`` masked by ``item_seq [B, L]``."""
        bias = self.attention_bias(item_seq)
        for block in self.blocks:
            x = block(x, bias)
        return x

    @property
    def causal(self) -> bool:
        """Whether the output at t depends on items ≤ t only: True unless ``bidirectional``
        (:mod:`seqrec.models.causality` checks it before all-position training)."""
        return not self.bidirectional

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Hidden state at every position: ``item_seq [B, L]`` (0 = padding) → ``[B, L, d]``.

        The hidden state at position t only depends on items at positions ≤ t.
        """
        return self.encode(self.embed(item_seq), item_seq)
