"""Top-k recommendations from a trained run.

``python -m seqrec.recommend --run <folder> …`` (see :mod:`seqrec.recommend.__main__`) and
``seqrec.load_run(path)`` → :class:`Recommender` with ``.recommend(sequences, k)``,
``.recommend_users(users, k, as_of)`` and ``.score(sequences)``; raw ids in, raw ids out.
Lists exclude the sequence's own items unless asked, never contain padding or S3-Rec's mask
token, break ties by item index, and are computed in memory-bounded batches
(:mod:`seqrec.recommend.topk`).
"""

from seqrec.recommend.run import Recommender, load_run
from seqrec.recommend.topk import recommend_csr, score_csr, top_k

__all__ = ["Recommender", "load_run", "recommend_csr", "score_csr", "top_k"]
