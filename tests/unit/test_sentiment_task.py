"""SentimentTask: the training loss (label smoothing) and refused settings."""

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
