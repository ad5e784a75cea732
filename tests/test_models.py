"""Model properties: causality of SASRec, left padding is a no-op, shapes."""

import pytest
import torch

from seqrec.models import BSARec, GRU4Rec, SASRec

N = 30


def make(model_cls):
    torch.manual_seed(0)
    return model_cls(n_items=N, max_len=10).eval()


@pytest.mark.parametrize("model_cls", [SASRec, GRU4Rec])
def test_shapes_and_tied_item_table(model_cls):
    model = make(model_cls)
    seq = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    out = model(seq)
    assert out.shape == (2, 5, model.item_emb.weight.shape[1])
    assert model.item_emb.weight.shape[0] == N + 1
    assert torch.all(model.item_emb.weight[0] == 0)  # padding embedding is zero


@pytest.mark.parametrize("model_cls", [SASRec, GRU4Rec])
def test_causality_changing_a_later_item_leaves_earlier_outputs(model_cls):
    model = make(model_cls)
    seq = torch.tensor([[0, 0, 5, 6, 7, 8, 9, 10, 11, 12]])
    changed = seq.clone()
    changed[0, 6] = 25
    a, b = model(seq), model(changed)
    # real positions 2..5 precede the change (padding positions 0, 1 carry no prediction)
    assert torch.allclose(a[0, 2:6], b[0, 2:6], atol=1e-6)
    assert not torch.allclose(a[0, 6:], b[0, 6:], atol=1e-4)


def test_bidirectional_sasrec_sees_the_future():
    model = SASRec(n_items=N, max_len=10, bidirectional=True).eval()
    seq = torch.tensor([[0, 0, 5, 6, 7, 8, 9, 10, 11, 12]])
    changed = seq.clone()
    changed[0, 9] = 25
    assert not torch.allclose(model(seq)[0, 2], model(changed)[0, 2], atol=1e-4)


@pytest.mark.parametrize("model_cls", [SASRec, GRU4Rec])
def test_trimming_left_padding_keeps_real_positions(model_cls):
    model = make(model_cls)
    full = torch.tensor([[0, 0, 0, 0, 0, 0, 3, 4, 5, 6], [0, 0, 0, 0, 0, 1, 2, 3, 4, 5]])
    trimmed = full[:, -5:]
    a, b = model(full)[:, -5:], model(trimmed)
    real = trimmed != 0
    assert torch.allclose(a[real], b[real], atol=1e-5)


def test_padding_keys_are_masked_in_sasrec():
    model = make(SASRec)
    # same real items, different amounts of left padding: identical outputs at real positions
    a = model(torch.tensor([[0, 0, 0, 7, 8, 9, 1, 2, 3, 4]]))[0, 3:]
    emb_backup = model.item_emb.weight.data[0].clone()
    model.item_emb.weight.data[0] = 5.0  # even a non-zero padding embedding must not leak
    b = model(torch.tensor([[0, 0, 0, 7, 8, 9, 1, 2, 3, 4]]))[0, 3:]
    model.item_emb.weight.data[0] = emb_backup
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("model_cls", [SASRec, GRU4Rec])
def test_output_table_is_the_item_rows_of_the_tied_embedding(model_cls):
    from seqrec.models.scoring import last_hidden, score_items

    model = make(model_cls)
    table = model.output_table()
    assert table.shape == (N, model.item_emb.weight.shape[1])
    assert table.data_ptr() == model.item_emb.weight[1].data_ptr()  # a view: row r is item r + 1
    seq = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    hidden = last_hidden(model, seq)
    assert torch.equal(hidden, model(seq)[:, -1])
    scores = score_items(model, hidden)
    assert scores.shape == (2, N) and scores.dtype == torch.float32
    # column c is item c + 1, scored by a plain dot product
    assert torch.allclose(scores[1, 6], hidden[1] @ model.item_emb.weight[7], atol=1e-6)


def test_s3rec_output_table_has_no_padding_and_no_mask_token():
    from seqrec.models import S3Rec

    model = S3Rec(n_items=N, max_len=10, n_attributes=4)
    assert model.output_table().shape == (N, 64)
    assert model.mask_id == N + 1  # the mask token has an id but no row among the classes


@pytest.mark.parametrize("model_cls", [SASRec, GRU4Rec])
def test_untied_output_table_is_separate_and_trains(model_cls):
    from seqrec.losses import CCE

    torch.manual_seed(0)
    tied = model_cls(n_items=N, max_len=10)
    torch.manual_seed(0)
    model = model_cls(n_items=N, max_len=10, tie_output=False)
    # the tied parameters start where the tied model's do: the extra table is drawn last
    assert all(torch.equal(p, dict(model.named_parameters())[n]) for n, p in tied.named_parameters())
    table = model.output_table()
    assert table.shape == (N, model.item_emb.weight.shape[1])
    assert table.data_ptr() != model.item_emb.weight.data_ptr() and not torch.equal(table, model.item_emb.weight[1:])
    before_out, before_in = table.detach().clone(), model.item_emb.weight.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    seq = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    targets = torch.tensor([[0, 0, 4, 5, 6], [2, 3, 4, 5, 7]])
    loss = CCE()(model(seq), targets, model.output_table())
    loss.backward()
    assert model.output_emb.grad is not None and model.output_emb.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(model.output_table(), before_out)  # the output table trained
    # the input embedding trained only through the encoder: rows of unseen items stay put
    assert not torch.equal(model.item_emb.weight[3], before_in[3])
    assert torch.equal(model.item_emb.weight[20], before_in[20])


def test_gru4rec_reference_padding_row_is_random_untrained_and_starts_the_state():
    torch.manual_seed(0)
    zero = GRU4Rec(n_items=N, max_len=10).eval()
    torch.manual_seed(0)
    reference = GRU4Rec(n_items=N, max_len=10, random_padding_row=True).eval()
    row = reference.item_emb.weight[0].detach()
    # Xavier-normal over a [31, 64] table: std sqrt(2 / (31 + 64)) ≈ 0.145
    assert 0.10 < row.std().item() < 0.19
    # the same draws elsewhere: only the padding row differs
    assert torch.equal(zero.item_emb.weight[1:], reference.item_emb.weight[1:])
    for name, param in zero.named_parameters():
        if name != "item_emb.weight":
            assert torch.equal(param, dict(reference.named_parameters())[name])
    full = torch.tensor([[0, 0, 0, 0, 0, 0, 3, 4, 5, 6], [0, 0, 0, 0, 0, 1, 2, 3, 4, 5]])
    # every input is padded to max_len inside forward, so a trimmed batch gives the same outputs ...
    assert torch.allclose(reference(full[:, -5:]), reference(full)[:, -5:], atol=1e-6)
    # ... and the padding feeds a non-zero state into the first real item (the zero row does not)
    assert not torch.allclose(zero(full)[:, -4:], reference(full)[:, -4:], atol=1e-4)
    # padding_idx keeps the row out of training
    reference.train()(full).sum().backward()
    assert reference.item_emb.weight.grad[0].abs().max() == 0
    assert reference.item_emb.weight.grad[1:].abs().max() > 0


def test_gru4rec_padding_row_option_reaches_the_model():
    from conftest import compose_config

    from seqrec.config.schema import build_object, validate_config

    model = build_object(validate_config(compose_config(["model=gru4rec"])).model, "model", n_items=N, max_len=10)
    assert model.random_padding_row is False and model.item_emb.weight[0].abs().max() == 0
    cfg = compose_config(["model=gru4rec", "model.random_padding_row=true"])
    model = build_object(validate_config(cfg).model, "model", n_items=N, max_len=10)
    assert model.random_padding_row is True and model.item_emb.weight[0].abs().sum() > 0
    cfg = compose_config(["model=gru4rec", "model.random_padding_row=true", "model.padding_class=true"])
    model = build_object(validate_config(cfg).model, "model", n_items=N, max_len=10)
    assert model.padding_class is True and model.extra_classes().shape == (1, 64)


@pytest.mark.parametrize("model_cls", [GRU4Rec, BSARec])
def test_padding_class_trains_the_padding_row_as_a_never_target_class(model_cls):
    from seqrec.losses import BCE, CCE
    from seqrec.models.scoring import training_table

    torch.manual_seed(0)
    model = model_cls(n_items=N, max_len=10, random_padding_row=True, padding_class=True)
    hidden = torch.randn(6, 4, model.item_emb.weight.shape[1], requires_grad=True)
    targets = torch.randint(0, N + 1, (6, 4))  # ids 1..N, 0 = no target
    # the reference: logits over the whole embedding table, class = item id, row 0 never a target
    real = targets != 0
    expected = torch.nn.functional.cross_entropy(hidden[real] @ model.item_emb.weight.T, targets[real])
    table = training_table(model, full_softmax=True)
    assert table.shape[0] == N + 1
    got = CCE(chunk_size=None)(hidden, targets, table)
    assert torch.allclose(got, expected, atol=1e-5)
    got.backward()
    assert model.item_emb.weight.grad[0].abs().max() > 0  # the softmax trains the padding row
    # a sampled loss and ranking see the N items only
    assert training_table(model, full_softmax=False).shape[0] == N
    assert not BCE.full_softmax and model.output_table().shape[0] == N
    # without the option the table is the items' and row 0 gets no gradient from the loss
    torch.manual_seed(0)
    plain = model_cls(n_items=N, max_len=10, random_padding_row=True)
    CCE(chunk_size=None)(hidden.detach(), targets, training_table(plain, full_softmax=True)).backward()
    assert plain.item_emb.weight.grad[0].abs().max() == 0


@pytest.mark.parametrize("model_cls", [GRU4Rec, BSARec])
def test_padding_class_needs_the_reference_padding_row_and_a_tied_table(model_cls):
    with pytest.raises(ValueError, match="padding_class=true needs random_padding_row=true"):
        model_cls(n_items=N, max_len=10, padding_class=True)
    with pytest.raises(ValueError, match="padding_class=true needs tie_output=true"):
        model_cls(n_items=N, max_len=10, random_padding_row=True, padding_class=True, tie_output=False)


def test_an_input_longer_than_the_padded_window_is_refused():
    # the window a padded model pads to: cropping the input would return fewer positions than given
    seq = torch.randint(1, N + 1, (2, 12))
    for model in (GRU4Rec(n_items=N, max_len=10, random_padding_row=True), BSARec(n_items=N, max_len=10)):
        with pytest.raises(ValueError, match="longer than the model's window max_len=10"):
            model(seq)
    assert GRU4Rec(n_items=N, max_len=10)(seq).shape == (2, 12, 64)  # no window without the padding row


@pytest.mark.parametrize("loss, refused", [("bce", True), ("ce", False)])
def test_padding_class_with_a_sampled_loss_is_refused_before_anything_is_written(tmp_path, loss, refused):
    from conftest import tiny_config

    from seqrec.errors import ConfigError
    from seqrec.runs.pipeline import build

    out = tmp_path / "run"
    options = ["model=gru4rec", f"loss={loss}", "model.random_padding_row=true", "model.padding_class=true"]
    cfg = tiny_config(tmp_path, out, "trainer.max_epochs=1", *options)
    if refused:
        with pytest.raises(ConfigError, match="model.padding_class=true .* loss=bce does not compute"):
            build(cfg)
        assert not out.exists()
    else:
        assert build(cfg).model.padding_class is True
