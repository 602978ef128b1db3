"""Fine-tuning options (nlpseq.tasks.finetune) and the parameter copying of
nlpseq.tasks.transfer, on tiny models built by hand."""

from functools import partial

import pytest
import torch

from nlpseq.encoders import RecurrentEncoder
from nlpseq.errors import NlpseqError
from nlpseq.tasks import GenerationTask, SentimentTask
from nlpseq.tasks.finetune import FineTuning, encoder_layer
from nlpseq.tasks.transfer import canonical_name, copy_part


def sentiment(finetune=None, lr=0.1, **encoder):
    sizes = {"cell": "lstm", "hidden_size": 8, "num_layers": 2, "bidirectional": True,
             **encoder}
    return SentimentTask(encoder=partial(RecurrentEncoder, **sizes),
                         optimizer=partial(torch.optim.SGD, lr=lr), vocab_size=20,
                         label_names=["neg", "pos"], embedding_dim=6, finetune=finetune)


def test_layer_groups_of_a_two_layer_encoder_are_embedding_layers_head():
    task = sentiment()
    model = task.model
    groups = task.layer_groups()
    assert len(groups) == 4  # embedding, layer 0, layer 1, head
    assert groups[0] == [model.embedding.weight]
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in groups[1]} == {
        f"encoder.rnn.{w}_l0{d}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for d in ("", "_reverse")}
    assert all(names[id(p)].endswith(("_l1", "_l1_reverse")) for p in groups[2])
    assert all(names[id(p)].startswith("head.") for p in groups[3])
    assert sum(len(g) for g in groups) == len(list(model.parameters()))


def test_gradual_unfreezing_by_hand_for_a_two_layer_encoder():
    """4 groups: epoch 0 the head, 1 + top layer, 2 + bottom layer, 3 + embedding."""
    gradual = FineTuning(unfreeze_schedule="gradual")
    assert [gradual.trainable_groups(epoch, 4) for epoch in range(6)] == [1, 2, 3, 4, 4, 4]
    slower = FineTuning(unfreeze_schedule="gradual", unfreeze_every=2)
    assert [slower.trainable_groups(epoch, 4) for epoch in range(8)] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert [FineTuning(freeze_encoder=True).trainable_groups(e, 4) for e in range(3)] == [1] * 3
    assert FineTuning().trainable_groups(0, 4) == 4


def test_unfreezing_sets_requires_grad_per_epoch():
    task = sentiment(FineTuning(unfreeze_schedule="gradual"))
    groups = task.layer_groups()
    trainer = type("T", (), {"current_epoch": 0})()
    for epoch, trainable in [(0, [False, False, False, True]), (1, [False, False, True, True]),
                             (2, [False, True, True, True]), (3, [True, True, True, True])]:
        trainer.current_epoch = epoch
        task._trainer = trainer  # current_epoch reads the trainer's
        task.on_train_batch_start(None, 0)
        assert [all(p.requires_grad for p in g) for g in groups] == trainable
        assert [any(p.requires_grad for p in g) for g in groups] == trainable


def test_discriminative_learning_rates_by_hand():
    """ULMFiT: head 0.1, top layer 0.1 * 0.5, bottom layer 0.1 * 0.25, embedding 0.1 * 0.125."""
    task = sentiment(FineTuning(layer_lr_decay=0.5), lr=0.1)
    optimizer = task.configure_optimizers()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.0125, 0.025, 0.05, 0.1])
    groups = task.layer_groups()
    assert [g["params"] for g in optimizer.param_groups] == groups
    plain = sentiment(lr=0.1).configure_optimizers()
    assert len(plain.param_groups) == 1 and plain.param_groups[0]["lr"] == 0.1


def test_a_frozen_encoder_does_not_change_in_a_training_step():
    torch.manual_seed(0)
    task = sentiment(FineTuning(freeze_encoder=True))
    task._trainer = type("T", (), {"current_epoch": 0})()
    task.on_train_batch_start(None, 0)
    task._trainer = None
    optimizer = task.configure_optimizers()
    frozen = {n: p.detach().clone() for n, p in task.model.named_parameters()
              if n.startswith(("embedding.", "encoder."))}
    head = {n: p.detach().clone() for n, p in task.model.named_parameters()
            if n.startswith("head.")}
    batch = {"tokens": torch.randint(2, 20, (4, 5)), "lengths": torch.tensor([5, 4, 3, 2]),
             "labels": torch.tensor([0, 1, 0, 1])}
    task.training_step(batch, 0).backward()
    optimizer.step()
    params = dict(task.model.named_parameters())
    for name, before in frozen.items():
        assert params[name].grad is None and torch.equal(params[name], before), name
    assert any(not torch.equal(params[n], before) for n, before in head.items())


def test_finetune_refusals():
    with pytest.raises(NlpseqError, match="cannot be combined"):
        FineTuning(freeze_encoder=True, unfreeze_schedule="gradual")
    with pytest.raises(NlpseqError, match="layer_lr_decay must be in"):
        FineTuning(layer_lr_decay=2.6)
    with pytest.raises(NlpseqError, match="unfreeze_schedule='slanted'"):
        FineTuning(unfreeze_schedule="slanted")


@pytest.mark.parametrize(("name", "canonical", "layer"), [
    ("rnn.weight_ih_l1", "weight_ih_l1", 1),
    ("rnn.layers.1.weight_hh_l0_reverse", "weight_hh_l1_reverse", 1),
    ("rnn.parametrizations.weight_hh_l0.original", "weight_hh_l0", 0),
    ("rnn.layers.2.parametrizations.weight_hh_l0.original", "weight_hh_l2", 2),
])
def test_recurrent_parameter_names(name, canonical, layer):
    assert canonical_name(name) == canonical
    assert encoder_layer(name) == layer


def test_copy_between_fused_and_locked_weight_dropped_encoders():
    """A language model with locked dropout and weight-drop gives its encoder to a plain
    one: the same tensors under other module names."""
    source = RecurrentEncoder("gru", 6, 8, num_layers=2, locked_dropout=True, weight_drop=0.2)
    target = RecurrentEncoder("gru", 6, 8, num_layers=2)
    assert copy_part(target, source, "recurrent", "test") == 8
    assert torch.equal(target.rnn.weight_hh_l1,
                       source.rnn.layers[1].parametrizations.weight_hh_l0.original)
    with pytest.raises(NlpseqError, match="weight_ih_l0 has shape"):
        copy_part(RecurrentEncoder("gru", 7, 8, num_layers=2), source, "recurrent", "test")


def test_a_language_model_gives_its_output_layer():
    lm = GenerationTask(encoder=partial(RecurrentEncoder, "lstm", hidden_size=8),
                        optimizer=partial(torch.optim.SGD, lr=0.1), vocab_size=20,
                        embedding_dim=6)
    assert set(lm.transfer_parts()) == {"embedding", "recurrent", "output"}
    assert set(sentiment().transfer_parts()) == {"embedding", "recurrent"}
