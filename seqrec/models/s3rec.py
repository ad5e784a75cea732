"""S3-Rec (Zhou et al., "S3-Rec: Self-Supervised Learning for Sequential Recommendation with
Mutual Information Maximization", CIKM 2020): SASRec's encoder pre-trained with four
self-supervised objectives that use item attributes, then fine-tuned on next-item prediction.

The network is :class:`~seqrec.models.SASRec` (same embeddings, post-LN blocks and init, as in
S3-Rec's ``models.py``) plus what pre-training needs: an attribute embedding table, a learned
embedding of the mask token, and one ``d × d`` projection per objective (Sec. 3; the reference
code calls them ``aap_norm``, ``mip_norm``, ``map_norm``, ``sp_norm``):

* **AAP** (associated attribute prediction): every real, *non-masked* position predicts the
  attributes of its own item: ``σ(E_A · W_aap h_t)`` against the item's multi-hot attributes.
* **MIP** (masked item prediction): every masked position scores its original item against a
  sampled item that is not in the sequence: ``(W_mip h_t)·e_pos`` vs ``(W_mip h_t)·e_neg``.
* **MAP** (masked attribute prediction): every masked position predicts the attributes of the
  item hidden behind the mask.
* **SP** (segment prediction): a sequence with one contiguous segment masked is encoded; its
  last hidden state (projected) scores the encoding of the true segment against that of a random
  segment of the corpus (both shown in place, the rest of the sequence masked).

Pre-training encodes with *bidirectional* attention (padding keys masked; mask tokens are
ordinary keys); :meth:`forward` (fine-tuning, evaluation) stays causal and equals SASRec's.

Clean forms chosen where the reference code has quirks (all stated again where they apply):

* MIP and SP: the reference computes ``BCE(σ(σ(s_pos) − σ(s_neg)), 1)``, a sigmoid applied to
  differences of sigmoids (so the loss can never fall below ``-log σ(1) ≈ 0.31`` and its gradient
  vanishes for confident scores). Here it is the pairwise ``−log σ(s_pos − s_neg)`` (BPR) on the
  raw scores: the paper's contrast of a positive and a negative, without the double squashing.
  The gradients differ in size, not only in form: with respect to ``s_pos`` the pairwise loss
  gives −0.5 at ``s_pos = s_neg = 0`` where the reference gives −0.125 (4×), and less than the
  reference once the pair is confidently ordered (−0.0025 against −0.013 at +3 / −3). So the
  same weights balance MIP and SP against AAP and MAP differently than in the reference (more
  early in pre-training, less later). What this changes was measured where it matters:
  fine-tuned from seqrec's 100-epoch Sports pre-training, S3-Rec lands within noise of the
  paper's S3-Rec cells for BCE, CE and CCE (``docs/s3rec.md``, ``docs/results.md``).
* AAP and MAP: binary cross-entropy *with logits* (stable), over the A real attributes; the
  reference also scores the padding attribute 0 (a random row that ``padding_idx`` keeps
  untrained) with the label 0 at every position, an extra constant negative left out here.
* Normalisation: the reference *sums* each loss over the batch (over positions and, for
  AAP/MAP, over attributes). Here each objective is summed over a sequence's positions (and
  attributes) and *averaged over the sequences of the batch*, i.e. the reference's value divided
  by the batch size, with its weights (AAP 0.2, MIP 1.0, MAP 1.0, SP 0.5); batches of unequal
  size (the last one, length buckets) weigh each sequence equally.

The mask token has id ``N + 1`` in the inputs, but its vector is a separate parameter
(``mask_emb``), not a row of ``item_emb``: the item table stays ``[N + 1, d]`` (row 0 =
padding), so the mask is never a class of a fine-tuning loss, never a sampled negative and never
ranked in evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from seqrec.models.s3rec_stage import Pretraining
from seqrec.models.sasrec import MASK_VALUE, SASRec
from seqrec.options import DropoutRate, PositiveFloat, PositiveInt


class S3Rec(SASRec):
    """SASRec with S3-Rec's pre-training heads; ``forward`` is SASRec's (causal).

    Args:
        n_items: N, real items 1..N (0 = padding, N + 1 = mask token in pre-training inputs).
        max_len: input window (50).
        n_attributes: A, attribute ids 1..A (dataset-derived; 0 when the dataset has none, in
            which case only fine-tuning from scratch is possible).
        hidden_size, num_blocks, num_heads, dropout, init_std: as :class:`SASRec`.

    Whether to pre-train, load a pre-trained checkpoint or fine-tune from scratch is the
    pipeline's decision (``model.pretrained``, ``model.pretrain``, ``stage``; see
    :mod:`seqrec.training.pretrain_stage`), not the network's. The pre-training parameters are created after
    SASRec's under a forked RNG, so with the same seed the encoder starts from exactly SASRec's
    initial weights and the global random stream afterwards is the same:
    ``model.pretrained=false`` reproduces SASRec.
    """

    name = "s3rec"
    # the config keys of its pre-training stage (model.pretrained, model.pretrain.*, model.pretrained_from)
    stage_options = Pretraining

    def __init__(
        self,
        n_items: int,
        max_len: int = 50,
        n_attributes: int = 0,
        hidden_size: PositiveInt = 64,
        num_blocks: PositiveInt = 2,
        num_heads: PositiveInt = 2,
        dropout: DropoutRate = 0.5,
        init_std: PositiveFloat = 0.02,
    ):
        super().__init__(
            n_items,
            max_len=max_len,
            hidden_size=hidden_size,
            num_blocks=num_blocks,
            num_heads=num_heads,
            dropout=dropout,
            init_std=init_std,
            bidirectional=False,
        )
        self.n_attributes = n_attributes
        with torch.random.fork_rng(devices=[]):
            self.attr_emb = nn.Embedding(n_attributes + 1, hidden_size, padding_idx=0)
            self.mask_emb = nn.Parameter(torch.empty(hidden_size).normal_(0.0, init_std))
            self.aap_proj = nn.Linear(hidden_size, hidden_size)
            self.mip_proj = nn.Linear(hidden_size, hidden_size)
            self.map_proj = nn.Linear(hidden_size, hidden_size)
            self.sp_proj = nn.Linear(hidden_size, hidden_size)
            for module in (self.attr_emb, self.aap_proj, self.mip_proj, self.map_proj, self.sp_proj):
                self._init_weights(module)

    @property
    def mask_id(self) -> int:
        """Item id of the mask token in pre-training inputs (never a class or a candidate)."""
        return self.n_items + 1

    # -- encoder -----------------------------------------------------------------------------
    def embed(self, item_seq: torch.Tensor) -> torch.Tensor:
        """SASRec's embedding, plus ``mask_emb`` where ``item_seq == N + 1``: ``[B, L] -> [B, L, d]``."""
        L = item_seq.size(1)
        if L > self.max_len:
            raise ValueError(f"input length {L} exceeds max_len {self.max_len}")
        is_mask = item_seq == self.mask_id  # [B, L]
        items = self.item_emb(item_seq.masked_fill(is_mask, 0))  # [B, L, d]; mask rows are 0 here
        items = items + is_mask.unsqueeze(-1) * self.mask_emb  # [B, L, d]
        positions = torch.arange(self.max_len - L, self.max_len, device=item_seq.device)  # [L]
        return self.emb_dropout(self.emb_norm(items + self.pos_emb(positions)))

    def encode_bidirectional(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Pre-training encoder: every position attends to every non-padding position (mask
        tokens included), ``[B, L] -> [B, L, d]``."""
        keys = (item_seq > 0)[:, None, None, :]  # [B, 1, 1, L]
        bias = torch.where(keys, 0.0, MASK_VALUE)  # [B, 1, 1, L]; broadcast over queries
        bias = bias.expand(-1, -1, item_seq.size(1), -1)  # [B, 1, L, L]
        x = self.embed(item_seq)
        for block in self.blocks:
            x = block(x, bias)
        return x

    # -- the four objectives -----------------------------------------------------------------
    def _attribute_logits(self, proj: nn.Linear, hidden: torch.Tensor) -> torch.Tensor:
        """``[P, d]`` hidden states → ``[P, A]`` logits over attributes 1..A."""
        return proj(hidden) @ self.attr_emb.weight[1:].T  # [P, A]

    def aap(self, hidden: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """AAP loss, summed: BCE-with-logits of ``hidden [P, d]`` (non-masked real
        positions) against their own items' attributes ``attributes [P, A+1]`` (column 0 unused)."""
        logits = self._attribute_logits(self.aap_proj, hidden)  # [P, A]
        return F.binary_cross_entropy_with_logits(logits, attributes[:, 1:].float(), reduction="sum")

    def map(self, hidden: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """MAP loss, summed: BCE-with-logits of ``hidden [P, d]``
        (masked positions) against the masked items' attributes ``[P, A+1]``."""
        logits = self._attribute_logits(self.map_proj, hidden)  # [P, A]
        return F.binary_cross_entropy_with_logits(logits, attributes[:, 1:].float(), reduction="sum")

    def mip(self, hidden: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """MIP loss, summed: ``-log σ(s_pos - s_neg)`` with ``s = (W_mip h)·e_item`` for
        ``hidden [P, d]`` at masked positions, original items ``positives [P]`` and sampled
        ``negatives [P]``. (The reference applies σ to the scores first and again to their
        difference; the clean pairwise form is used here.)"""
        h = self.mip_proj(hidden)  # [P, d]
        pos = (h * self.item_emb(positives)).sum(-1)  # [P]
        neg = (h * self.item_emb(negatives)).sum(-1)  # [P]
        return -F.logsigmoid(pos - neg).sum()

    def sp(self, context: torch.Tensor, pos_segment: torch.Tensor, neg_segment: torch.Tensor) -> torch.Tensor:
        """SP loss, summed: ``-log σ(s_pos - s_neg)`` with ``s = (W_sp c)·s_seg`` for the
        last hidden states ``[S, d]`` of the segment-masked sequence (``context``) and of the
        positive and negative segment sequences (same clean form as :meth:`mip`)."""
        c = self.sp_proj(context)  # [S, d]
        return -F.logsigmoid((c * pos_segment).sum(-1) - (c * neg_segment).sum(-1)).sum()

    def pretrain_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The four unweighted objectives of one batch, each a per-sequence sum averaged over
        the B sequences of the batch (see the module docstring).

        Args:
            batch: from :meth:`seqrec.data.pretrain_samples.PretrainData.batch` (all ``[B, W]`` unless noted):
                ``items`` (the prefixes, 0 = padding), ``masked`` (items with some replaced by
                ``mask_id``), ``negatives`` (MIP negatives, used where masked), ``attributes``
                (``[B, W, A+1]`` multi-hot of ``items``), ``segment_masked``, ``pos_segment``,
                ``neg_segment`` (SP inputs) and ``segment_valid`` (``[B]`` bool, prefixes of
                length >= 2, the only ones with a segment).

        Returns:
            ``{"aap", "mip", "map", "sp"}`` scalar tensors.
        """
        items, masked = batch["items"], batch["masked"]
        B = items.shape[0]
        # one bidirectional pass over the masked prefixes and the three SP sequences: [4B, W, d]
        hidden = self.encode_bidirectional(
            torch.cat([masked, batch["segment_masked"], batch["pos_segment"], batch["neg_segment"]])
        )
        h_items, h_context, h_pos, h_neg = hidden.split(B)  # 4 × [B, W, d]
        is_mask = masked == self.mask_id  # [B, W]
        seen = (masked != 0) & ~is_mask  # [B, W] real, non-masked positions
        valid = batch["segment_valid"]  # [B]
        losses = {
            "aap": self.aap(h_items[seen], batch["attributes"][seen]),
            "mip": self.mip(h_items[is_mask], items[is_mask], batch["negatives"][is_mask]),
            "map": self.map(h_items[is_mask], batch["attributes"][is_mask]),
            "sp": self.sp(h_context[valid, -1], h_pos[valid, -1], h_neg[valid, -1]),
        }
        return {name: value / B for name, value in losses.items()}
