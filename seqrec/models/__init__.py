"""Sequential recommenders: ``forward(item_seq [B, L]) -> hidden [B, L, d]`` and
``output_table() -> [N, d]`` (items 1..N, the prediction layer; tied to the input embedding
unless ``tie_output=False``). Scoring goes through :mod:`seqrec.models.scoring`."""

from seqrec.models.bsarec import BSARec
from seqrec.models.gru4rec import GRU4Rec
from seqrec.models.s3rec import S3Rec
from seqrec.models.sasrec import SASRec

__all__ = ["BSARec", "GRU4Rec", "S3Rec", "SASRec"]
