"""SentimentTask: the training losses (label smoothing, mixup, adversarial) and refused
settings."""

import functools
import math

import pytest
import torch

from nlpseq.encoders import RecurrentEncoder
from nlpseq.errors import NlpseqError
from nlpseq.tasks import SentimentTask


def make_task(**kwargs) -> SentimentTask:
    torch.manual_seed(0)
    return SentimentTask(functools.partial(RecurrentEncoder, cell="gru", hidden_size=4),
                         functools.partial(torch.optim.Adam, lr=0.01), vocab_size=10,
                         label_names=["negative", "positive"], embedding_dim=3, **kwargs)


def test_label_smoothing_spreads_the_target_over_the_classes():
    task = make_task(label_smoothing=0.2, embedding_dropout=0.0, dropout=0.0).eval()
    batch = {"tokens": torch.tensor([[4, 5, 6]]), "lengths": torch.tensor([3]),
             "labels": torch.tensor([1])}
    log_p = task(batch["tokens"], batch["lengths"]).log_softmax(-1)[0]
    # Two classes, epsilon 0.2: target weights 0.9 (true class) and 0.1 (the other).
    by_hand = -(0.9 * log_p[1] + 0.1 * log_p[0])
    assert task.training_step(batch, 0).item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert not math.isclose(by_hand.item(), -log_p[1].item(), rel_tol=1e-3)


@pytest.mark.parametrize("key", ["label_smoothing", "word_dropout", "embedding_dropout"])
def test_probabilities_outside_zero_one_are_refused_naming_the_key(key):
    with pytest.raises(NlpseqError, match=rf"^{key} must be in \[0, 1\); got 1.5$"):
        make_task(**{key: 1.5})


def test_mixup_mixes_sentence_vectors_and_targets_with_one_weight():
    task = make_task(mixup_alpha=0.4, embedding_dropout=0.0, dropout=0.0).eval()
    tokens, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
    labels = torch.tensor([1, 0])
    vectors = task.model.sentence_vectors(tokens, lengths)
    torch.manual_seed(5)
    weight = float(torch.distributions.Beta(0.4, 0.4).sample())
    partner = torch.randperm(2)
    logits = task.model.head.classify(weight * vectors + (1 - weight) * vectors[partner])
    log_p = logits.log_softmax(-1)
    by_hand = -(weight * log_p[[0, 1], labels] + (1 - weight) * log_p[[0, 1], labels[partner]])
    torch.manual_seed(5)
    batch = {"tokens": tokens, "lengths": lengths, "labels": labels}
    assert task.training_step(batch, 0).item() == pytest.approx(by_hand.mean().item(), rel=1e-6)
    # A batch of one sentence mixed with itself is the sentence: the plain loss.
    one = {"tokens": tokens[:1], "lengths": lengths[:1], "labels": labels[:1]}
    plain = task.loss(task(one["tokens"], one["lengths"]), one["labels"])
    assert task.training_step(one, 0).item() == pytest.approx(plain.item(), rel=1e-6)


def test_a_negative_mixup_alpha_is_refused():
    message = r"^mixup_alpha must be >= 0 \(0 turns mixup off\); got -1$"
    with pytest.raises(NlpseqError, match=message):
        make_task(mixup_alpha=-1)


def test_adversarial_loss_adds_the_loss_of_vectors_moved_uphill_by_epsilon_of_their_norm():
    task = make_task(adversarial_epsilon=0.5, embedding_dropout=0.0, dropout=0.0).eval()
    batch = {"tokens": torch.tensor([[4, 5, 6], [7, 8, 0]]), "lengths": torch.tensor([3, 2]),
             "labels": torch.tensor([1, 0])}
    model = task.model
    clean = task.loss(task(batch["tokens"], batch["lengths"]), batch["labels"])
    moved = []
    for i, length in enumerate([3, 2]):  # one sentence at a time, without its padding
        vectors = model.embedding(batch["tokens"][i, :length]).detach().requires_grad_()
        loss = task.loss(model.head.classify(model.pool_embedded(vectors[None], batch[
            "lengths"][i:i + 1])), batch["labels"][i:i + 1])
        (gradient,) = torch.autograd.grad(loss, vectors)
        moved.append(vectors + 0.5 * vectors.norm() * gradient / gradient.norm())
    adversarial = [task.loss(model.head.classify(model.pool_embedded(m[None], batch["lengths"][
        i:i + 1])), batch["labels"][i:i + 1]) for i, m in enumerate(moved)]
    # The batch loss is a mean over sentences; the gradient of that mean points the same
    # way as each sentence's own gradient, so the steps are the same.
    by_hand = clean + (adversarial[0] + adversarial[1]) / 2
    total = task.training_step(batch, 0)
    assert total.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert total.item() > 2 * clean.item()  # uphill: the moved sentences cost more
    # Both losses train the parameters: the gradient is not that of the clean loss alone.
    weights = list(task.model.encoder.parameters())
    clean_gradient = torch.autograd.grad(clean, weights)
    total_gradient = torch.autograd.grad(total, weights)
    assert not all(torch.allclose(a, b) for a, b in zip(clean_gradient, total_gradient,
                                                        strict=True))


def test_adversarial_training_refuses_a_negative_epsilon_and_mixup_at_once():
    message = r"^adversarial_epsilon must be >= 0 \(0 turns adversarial training off\); got -0.1$"
    with pytest.raises(NlpseqError, match=message):
        make_task(adversarial_epsilon=-0.1)
    with pytest.raises(NlpseqError, match="^mixup_alpha and adversarial_epsilon cannot be"):
        make_task(adversarial_epsilon=0.1, mixup_alpha=0.4)
