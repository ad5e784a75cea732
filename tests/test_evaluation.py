"""Full-ranking metrics on hand-computed score vectors, incl. ties and history masking."""

import math

import pytest
import torch

from seqrec.evaluation import MASKED_RANK, mean_metrics, metrics_from_ranks, target_ranks


def test_ranks_by_hand():
    scores = torch.tensor(
        [
            [0.1, 0.9, 0.5, 0.3],  # target item 3 (score .5): one item above → rank 2
            [0.4, 0.2, 0.1, 0.0],  # target item 1: best → rank 1
            [0.0, 0.0, 0.0, 0.0],  # all tied: pessimistic → rank 4 (last)
            [0.2, 0.7, 0.7, 0.1],  # target item 2 tied with item 3 → rank 2
        ]
    )
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


def test_auto_eval_batch_bounds_the_score_matrix():
    from seqrec.evaluation import resolve_eval_batch_size

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_eval_batch_size("auto", 12_101, cpu) == 1024  # Beauty: the cap
    assert resolve_eval_batch_size("auto", 1_000_000, cpu) == 2**26 // 1_000_000 == 67  # 268 MB, not 4 GB
    assert resolve_eval_batch_size("auto", 1_000_000, cuda) == 2**28 // 1_000_000 == 268
    assert resolve_eval_batch_size("auto", 10**9, cpu) == 1  # never zero
    assert resolve_eval_batch_size(7, 10**9, cpu) == 7  # an int is used as given
    for bad in (0, -3, "big", 2.5, True):
        with pytest.raises(ValueError, match="eval.batch_size"):
            resolve_eval_batch_size(bad, 100, cpu)


def test_eval_batch_size_does_not_change_ranks():
    from seqrec.evaluation import evaluate_ranks
    from seqrec.models.sasrec import SASRec

    torch.manual_seed(0)
    model = SASRec(n_items=30, max_len=6, hidden_size=8, num_blocks=1, num_heads=1)
    inputs = torch.randint(1, 31, (11, 6))
    inputs[:4, :3] = 0  # some left padding, so trimming and ordering matter
    targets = torch.randint(1, 31, (11,))
    ranks = [evaluate_ranks(model, inputs, targets, None, batch_size=b) for b in ("auto", 1, 3, 64)]
    for other in ranks[1:]:
        assert torch.equal(ranks[0], other)


def test_nan_scored_items_rank_above_the_target_pessimistically():
    # target item 2 scores 1.0; item 1 NaN, item 3 scores 2.0, item 4 scores 0.5, item 5 masked
    scores = torch.tensor([[float("nan"), 1.0, 2.0, 0.5, float("-inf")]])
    assert target_ranks(scores.clone(), torch.tensor([2])).tolist() == [3]  # NaN and 2.0 above it
    # without the NaN the target is second
    scores[0, 0] = 0.0
    assert target_ranks(scores, torch.tensor([2])).tolist() == [2]


def test_a_repeated_target_is_ranked_or_masked_as_the_protocol_says():
    from seqrec.evaluation import evaluate_ranks

    class Fixed(torch.nn.Module):  # scores items 1..4 as 0.4, 0.3, 0.2, 0.1 whatever the input
        def forward(self, seq):
            return torch.ones(seq.shape[0], seq.shape[1], 1)

        def output_table(self):
            return torch.tensor([[0.4], [0.3], [0.2], [0.1]])

    inputs, targets = torch.tensor([[1, 2]]), torch.tensor([2])  # the target 2 repeats the history

    def history(users):
        return torch.tensor([0, 0]), torch.tensor([1, 2])

    # ranked: item 1 (history) masked, target 2 first among the rest
    assert evaluate_ranks(Fixed(), inputs, targets, history).tolist() == [1]
    # the paper's code: masked with the history, a miss
    assert evaluate_ranks(Fixed(), inputs, targets, history, rank_repeats=False).tolist() == [MASKED_RANK]


def test_table2_follows_the_papers_rule_for_repeated_targets():
    from conftest import compose_config

    cfg = compose_config(["experiment=table2"])
    assert cfg.eval.rank_repeats is False and cfg.trainer.rank_repeats is False
    assert compose_config().trainer.rank_repeats is True


def test_history_scored_zero_outranks_only_a_target_with_a_negative_score():
    from seqrec.evaluation import evaluate_ranks

    class Signed(torch.nn.Module):  # item scores 0.4, -0.1, -0.2, -0.3, 0.3 whatever the input
        def forward(self, seq):
            return torch.ones(seq.shape[0], seq.shape[1], 1)

        def output_table(self):
            return torch.tensor([[0.4], [-0.1], [-0.2], [-0.3], [0.3]])

    inputs = torch.tensor([[3, 1], [3, 4]])
    targets = torch.tensor([2, 5])  # user 0's target scores -0.1, user 1's 0.3

    def history(users):  # one batch of both users: user 0 saw items 1 and 3, user 1 items 3 and 4
        return torch.tensor([0, 0, 1, 1]), torch.tensor([1, 3, 3, 4])

    # removed: user 0's target is behind item 5 only; user 1's behind item 1 only
    assert evaluate_ranks(Signed(), inputs, targets, history).tolist() == [2, 2]
    # scored 0 (the paper's code): items 1 and 3 (history, 0 > -0.1) and item 5 beat user 0's
    # target; user 1's target scores above 0 and keeps its rank
    assert evaluate_ranks(Signed(), inputs, targets, history, history_score=0.0).tolist() == [4, 2]
