"""ResumableLoader: a training loader stopped part-way through an epoch goes on, in a new
loader, with exactly the batches it had not handed out, in order; the training loaders of
every task are such loaders."""

import pytest

from nlpseq.data import (
    BucketBatchSampler,
    LanguageModelDataModule,
    SentimentDataModule,
    TranslationDataModule,
)
from nlpseq.data.batching import seeded_loader
from nlpseq.data.probe_data import ProbeDataModule
from nlpseq.errors import NlpseqError
from nlpseq.tokenization import train_tokenizer_pair, train_tokenizers_tokenizer


def word_tokenizer(texts):
    return train_tokenizers_tokenizer(texts, model="word")


def sentiment():
    data = SentimentDataModule(name="sample", train_file="sentiment_train.tsv",
                               validation_file="sentiment_validation.tsv", batch_size=16)
    data.load()
    data.encode(word_tokenizer(data.train_texts()))
    return data


def translation():
    data = TranslationDataModule(name="sample", train_file="translation_train",
                                 validation_file="translation_validation", batch_size=64)
    data.load()
    data.encode(train_tokenizer_pair(word_tokenizer, data.train_texts("source"),
                                     data.train_texts("target")))
    return data


def language_model(mode: str):
    def build():
        data = LanguageModelDataModule(name="sample", train_file="lm_train.txt",
                                       validation_file="lm_validation.txt", mode=mode,
                                       num_streams=8, batch_size=8, block_size=16)
        data.load()
        data.encode(word_tokenizer(data.train_texts()))
        return data
    return build


def probes():
    data = ProbeDataModule("adding", "adding", length=5, train_size=200, batch_size=16)
    data.load()
    return data


def examples(batch: dict) -> list[int] | int:
    """What identifies a batch: its examples' positions, or a stream's block number."""
    return batch["index"].tolist() if "index" in batch else int(batch["block"])


def whole_epoch(build, epoch: int) -> list:
    loader = build().train_dataloader()
    loader.order.set_epoch(epoch)
    return [examples(batch) for batch in loader]


@pytest.mark.parametrize("build", [sentiment, translation, language_model("lines"),
                                   language_model("stream"), probes],
                         ids=["sentiment", "translation", "lm-lines", "lm-stream", "probes"])
def test_a_new_loader_given_the_state_goes_on_with_exactly_the_batches_not_taken(build):
    epoch, taken = 2, 3
    expected = whole_epoch(build, epoch)
    assert len(expected) > taken + 1
    stopped = build().train_dataloader()
    stopped.order.set_epoch(epoch)
    batches = iter(stopped)
    first = [examples(next(batches)) for _ in range(taken)]
    state = stopped.state_dict()
    assert state == {"epoch": epoch, "batches": taken}

    resumed = build()  # a new process: new data module, new loader
    resumed.load_state_dict({"train_loader": state})  # as Lightning restores a checkpoint
    loader = resumed.train_dataloader()
    rest = iter(loader)  # as Lightning does: the iterator first, then the epoch
    loader.order.set_epoch(epoch)
    assert first + [examples(batch) for batch in rest] == expected
    assert [examples(batch) for batch in loader] == expected  # the next pass is whole


def bucket_loader(num_workers: int = 0):
    sampler = BucketBatchSampler(list(range(1, 41)), batch_size=4, pool_batches=1, seed=3)
    return seeded_loader(list(range(40)), seed=0, batch_sampler=sampler,
                         num_workers=num_workers)


def test_the_position_counts_batches_handed_out_not_those_workers_read_ahead():
    expected = bucket_loader().batch_sampler
    expected.set_epoch(5)
    loader = bucket_loader(num_workers=1)  # its worker reads two batches ahead
    batches = iter(loader)
    loader.batch_sampler.set_epoch(5)  # after the iterator, as Lightning does
    drawn = [next(batches).tolist() for _ in range(2)]
    assert drawn == expected.batches()[:2]
    assert loader.state_dict() == {"epoch": 5, "batches": 2}


def test_a_position_saved_in_another_epoch_leaves_the_pass_whole():
    """A checkpoint written after an epoch's last batch: the next epoch starts whole."""
    loader = bucket_loader()
    loader.load_state_dict({"epoch": 1, "batches": 10})
    passes = iter(loader)
    loader.batch_sampler.set_epoch(2)
    assert [b.tolist() for b in passes] == loader.batch_sampler.batches()
    assert loader.state_dict() == {"epoch": 2, "batches": 10}


@pytest.mark.parametrize("state", [[1, 2], {"epoch": 1}, {"epoch": -1, "batches": 0},
                                   {"epoch": 0, "batches": "3"}])
def test_a_malformed_saved_position_is_one_line(state):
    loader = bucket_loader()
    with pytest.raises(NlpseqError, match="^The checkpoint's training-loader state is not "
                                          r"\{'epoch': int >= 0, 'batches': int >= 0\}; got "):
        loader.load_state_dict(state)
    data = probes()
    with pytest.raises(NlpseqError, match="training-loader state"):
        data.load_state_dict({"train_loader": state})


def test_the_data_module_saves_the_position_of_its_training_loader():
    data = probes()
    assert data.state_dict() == {}  # no training loader yet: nothing to save
    data.load_state_dict({})
    batches = iter(data.train_dataloader())
    next(batches)
    next(batches)
    assert data.state_dict() == {"train_loader": {"epoch": 0, "batches": 2}}
