"""Sequential recommenders: ``forward(item_seq [B, L]) -> hidden [B, L, d]`` and an ``item_emb``
table (``[N+1, d]``, row 0 = padding) used as the tied prediction layer."""

from seqrec.models.gru4rec import GRU4Rec
from seqrec.models.s3rec import S3Rec
from seqrec.models.sasrec import SASRec

__all__ = ["GRU4Rec", "S3Rec", "SASRec"]
