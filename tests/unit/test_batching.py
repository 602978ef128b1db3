"""Length-bucketed batching and padding (property tests with hypothesis)."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpseq.data.batching import BucketBatchSampler, PadCollator, padding_efficiency

lengths_strategy = st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=400)


@settings(max_examples=60, deadline=None)
@given(lengths=lengths_strategy, batch_size=st.integers(1, 40), shuffle=st.booleans(),
       seed=st.integers(0, 5))
def test_every_example_appears_exactly_once(lengths, batch_size, shuffle, seed):
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, pool_batches=3, seed=seed)
    batches = list(sampler)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths)))
    assert len(batches) == len(sampler)
    assert all(1 <= len(b) <= batch_size for b in batches)


@settings(max_examples=40, deadline=None)
@given(lengths=lengths_strategy, batch_size=st.integers(1, 40))
def test_unshuffled_batches_are_sorted_by_length(lengths, batch_size):
    batches = BucketBatchSampler(lengths, batch_size, shuffle=False).batches()
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths)


def test_epochs_differ_and_seeds_repeat():
    lengths = [(i * 7) % 23 + 1 for i in range(500)]
    sampler = BucketBatchSampler(lengths, 16, shuffle=True, seed=3)
    first = sampler.batches()
    sampler.set_epoch(1)
    second = sampler.batches()
    assert first != second
    again = BucketBatchSampler(lengths, 16, shuffle=True, seed=3)
    assert again.batches() == first


def test_bucketing_beats_random_batches_on_padding():
    lengths = [(i * 37) % 50 + 1 for i in range(2000)]
    bucketed = BucketBatchSampler(lengths, 32, shuffle=True, pool_batches=50, seed=0).batches()
    random_batches = [list(range(i, min(i + 32, 2000))) for i in range(0, 2000, 32)]
    assert padding_efficiency(lengths, bucketed) > 0.95
    assert padding_efficiency(lengths, random_batches) < 0.6


def test_padding_efficiency_by_hand():
    # batches [3, 1] -> 4 real of 6; [2] -> 2 of 2  => 6 / 8
    assert padding_efficiency([3, 1, 2], [[0, 1], [2]]) == 6 / 8


def test_drop_last():
    sampler = BucketBatchSampler(list(range(1, 11)), 4, shuffle=False, drop_last=True)
    assert len(sampler) == 2 and all(len(b) == 4 for b in sampler)


def test_collator_pads_to_batch_max():
    batch = PadCollator(pad_id=0)([
        {"input_ids": [5, 6, 7], "label_id": 1, "index": 4},
        {"input_ids": [8], "label_id": 0, "index": 2},
    ])
    assert batch["tokens"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["lengths"].tolist() == [3, 1]
    assert batch["labels"].tolist() == [1, 0]
    assert batch["index"].tolist() == [4, 2]
    assert batch["tokens"].dtype == torch.long


def test_collator_without_labels():
    examples = [{"input_ids": [1, 2], "index": 0}, {"input_ids": [3], "index": 1}]
    batch = PadCollator(pad_id=9)(examples)
    assert "labels" not in batch
    assert batch["tokens"].tolist() == [[1, 2], [3, 9]]


def test_lightning_gives_every_training_epoch_a_new_batch_order(tmp_path):
    """The batch order depends on the epoch: Lightning must reach ``set_epoch``."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    class FirstBatches(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.first = []  # the examples of each epoch's first batch

        def training_step(self, batch, batch_idx):
            if batch_idx == 0:
                self.first.append(batch)
            return self.weight.sum() * 0

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    sampler = BucketBatchSampler(list(range(1, 41)), batch_size=4, pool_batches=1, seed=3)
    loader = DataLoader(list(range(40)), batch_sampler=sampler)
    module = FirstBatches()
    pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False,
               default_root_dir=tmp_path).fit(module, loader)
    expected = [BucketBatchSampler(list(range(1, 41)), batch_size=4, pool_batches=1, seed=3)
                for _ in range(3)]
    for epoch, other in enumerate(expected):
        other.set_epoch(epoch)
    assert [b.tolist() for b in module.first] == [e.batches()[0] for e in expected]
    assert len({tuple(b.tolist()) for b in module.first}) == 3


def test_data_pool_batches_reaches_every_task_datamodule_and_one_pool_mixes_lengths():
    """`data.pool_batches=1` (no length bucketing) is a config option of every text task,
    and with it a training batch holds lengths as mixed as a random draw."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from nlpseq.config.folder import config_dir
    with initialize_config_dir(config_dir(), version_base="1.3"):
        for task in ("sentiment", "translation", "generation"):
            default = compose("train", [f"task={task}"]).data
            assert default.pool_batches == 100
            data = instantiate(compose("train", [f"task={task}", "data.pool_batches=1"]).data)
            assert data.pool_batches == 1, task

    lengths = [1 + i % 40 for i in range(400)]  # 1..40, ten of each
    spread = {pools: sum(max(lengths[i] for i in b) - min(lengths[i] for i in b)
                         for b in BucketBatchSampler(lengths, 20, pool_batches=pools,
                                                     seed=0).batches())
              for pools in (1, 20)}
    assert spread[20] < 20 * 2  # sorted pools: neighbours in length, 20 batches of <= 1-2
    assert spread[1] > 20 * 25  # one batch per pool: each spans most of 1..40
