"""Full-ranking metrics on hand-computed score vectors, incl. ties and history masking."""

import math

import pytest
import torch

from seqrec.evaluation import MASKED_RANK, mean_metrics, metrics_from_ranks, target_ranks


def test_ranks_by_hand():
    scores = torch.tensor([
        [0.1, 0.9, 0.5, 0.3],  # target item 3 (score .5): one item above → rank 2
        [0.4, 0.2, 0.1, 0.0],  # target item 1: best → rank 1
        [0.0, 0.0, 0.0, 0.0],  # all tied: pessimistic → rank 4 (last)
        [0.2, 0.7, 0.7, 0.1],  # target item 2 tied with item 3 → rank 2
    ])
    targets = torch.tensor([3, 1, 1, 2])
    assert target_ranks(scores, targets).tolist() == [2, 1, 4, 2]


def test_history_masking_and_masked_target_is_a_miss():
    scores = torch.tensor([[0.9, 0.8, 0.1], [0.9, 0.8, 0.1]])
    scores[0, 0] = float("-inf")  # item 1 in history: target item 2 moves up to rank 1
    scores[1, 1] = float("-inf")  # the target itself is in history: a miss
    ranks = target_ranks(scores, torch.tensor([2, 2]))
    assert ranks.tolist() == [1, MASKED_RANK]
    m = metrics_from_ranks(ranks, ks=(1, 3, 20))  # a miss even at a cut-off above N = 3
    assert m["hr@1"].tolist() == [1.0, 0.0] and m["hr@20"].tolist() == [1.0, 0.0]
    assert m["ndcg@20"].tolist() == [1.0, 0.0]


def test_hr_and_ndcg_values():
    ranks = torch.tensor([1, 2, 5, 6, 10, 11, 20, 21])
    m = metrics_from_ranks(ranks)
    assert m["hr@5"].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert m["hr@10"].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert m["hr@20"].tolist() == [1, 1, 1, 1, 1, 1, 1, 0]
    assert m["ndcg@5"][1].item() == pytest.approx(1 / math.log2(3))
    assert m["ndcg@10"][4].item() == pytest.approx(1 / math.log2(11))
    assert m["ndcg@20"][6].item() == pytest.approx(1 / math.log2(21))
    assert m["ndcg@20"][7].item() == 0
    means = mean_metrics(ranks, prefix="test/")
    assert means["test/hr@10"] == pytest.approx(5 / 8)
    expected = (1 + 1 / math.log2(3) + 1 / math.log2(6)) / 8
    assert means["test/ndcg@5"] == pytest.approx(expected)


def test_nan_scores_are_an_error():
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(torch.tensor([[float("nan"), 1.0]]), torch.tensor([1]))
