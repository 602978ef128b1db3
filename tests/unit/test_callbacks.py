"""Callbacks: atomic checkpoint writes (a failing save leaves the previous file intact),
the training-token count and the per-run peak memory."""

import numpy as np
import pytest
import torch

from nlpseq.tasks.callbacks import (
    AtomicModelCheckpoint,
    PeakMemory,
    TrainingThroughput,
    resident_mib,
)


class FailingTrainer:
    is_global_zero = True
    global_step = 7
    loggers = []

    def save_checkpoint(self, path, weights_only=False):
        with open(path, "wb") as handle:
            handle.write(b"half a checkp")
        raise OSError("disk full")


class WorkingTrainer(FailingTrainer):
    def save_checkpoint(self, path, weights_only=False):
        with open(path, "wb") as handle:
            handle.write(b"new checkpoint")


def test_a_failed_save_keeps_the_old_checkpoint(tmp_path):
    best = tmp_path / "best.ckpt"
    best.write_bytes(b"good old checkpoint")
    callback = AtomicModelCheckpoint(dirpath=tmp_path)
    with pytest.raises(OSError):
        callback.save_now(FailingTrainer(), str(best))
    assert best.read_bytes() == b"good old checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt"]


def test_a_successful_save_replaces_it(tmp_path):
    best = tmp_path / "best.ckpt"
    best.write_bytes(b"good old checkpoint")
    AtomicModelCheckpoint(dirpath=tmp_path).save_now(WorkingTrainer(), str(best))
    assert best.read_bytes() == b"new checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt"]


def test_peak_memory_samples_this_processs_resident_memory():
    monitor = PeakMemory()
    monitor._sample()
    before = monitor.rss_mib
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, written, so resident
    monitor._sample()
    assert monitor.rss_mib - before >= 48
    del block
    monitor._sample()
    assert monitor.rss_mib >= before + 48  # a peak: freeing does not lower it
    assert resident_mib() > 0


class Clock:
    """A controlled ``time.perf_counter``: time passes only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def batch(*lengths):
    return {"lengths": torch.tensor(lengths)}


def train_batch(monitor, clock, seconds, lengths, load_seconds=0.0):
    """One training batch: ``load_seconds`` to load it, ``seconds`` to train on it."""
    clock.now += load_seconds
    monitor.on_train_batch_start(None, None, batch(*lengths), 0)
    clock.now += seconds
    monitor.on_train_batch_end(None, None, None, batch(*lengths), 0)


def test_throughput_counts_training_and_loading_but_not_validation(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("nlpseq.tasks.callbacks.time.perf_counter", clock)
    monitor = TrainingThroughput()
    monitor.on_train_start(None, None)
    clock.now += 50  # the sanity check, the first loader's workers: before the first batch
    monitor.on_train_epoch_start(None, None)
    train_batch(monitor, clock, 2.0, [3, 1, 2])
    train_batch(monitor, clock, 1.0, [5, 4], load_seconds=0.5)  # loading between batches counts
    clock.now += 300  # a validation in the middle of the epoch (val_check_interval < 1)
    monitor.on_validation_end(None, None)
    train_batch(monitor, clock, 1.5, [7], load_seconds=0.25)
    assert monitor.tokens == 22
    assert monitor.seconds == pytest.approx(2.0 + 0.5 + 1.0 + 1.5)
    assert monitor.tokens_per_second == pytest.approx(22 / 5.0)


def test_a_run_resumed_mid_epoch_counts_only_its_own_batches_beside_the_saved_ones(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("nlpseq.tasks.callbacks.time.perf_counter", clock)
    first = TrainingThroughput()
    first.on_train_start(None, None)
    train_batch(first, clock, 2.0, [4, 4])
    resumed = TrainingThroughput()
    resumed.load_state_dict(first.state_dict())
    clock.now += 802  # imports, restoring the checkpoint; no epoch start on a mid-epoch resume
    train_batch(resumed, clock, 3.0, [2, 2])
    assert resumed.tokens == 12
    assert resumed.seconds == pytest.approx(5.0)  # 2 s saved + 3 s of its own batch
    assert resumed.state_key == "ThroughputMonitor"  # where checkpoints keep its state


def test_the_steady_rate_leaves_out_each_processs_first_batches(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("nlpseq.tasks.callbacks.time.perf_counter", clock)
    monitor = TrainingThroughput(warmup_batches=2)
    monitor.on_train_start(None, None)
    train_batch(monitor, clock, 10.0, [5])  # a new shape: kernels chosen, memory grown
    train_batch(monitor, clock, 6.0, [5])
    assert monitor.steady_tokens_per_second is None  # nothing after the warm-up yet
    train_batch(monitor, clock, 1.0, [4])
    train_batch(monitor, clock, 1.0, [6])
    assert monitor.tokens_per_second == pytest.approx(20 / 18.0)
    assert monitor.steady_tokens_per_second == pytest.approx(10 / 2.0)
    resumed = TrainingThroughput(warmup_batches=2)
    resumed.load_state_dict(monitor.state_dict())
    for seconds in (8.0, 8.0, 2.0):  # the resumed process warms up again
        train_batch(resumed, clock, seconds, [4])
    assert resumed.steady_tokens_per_second == pytest.approx(14 / 4.0)


def test_a_diverged_language_model_gets_no_sample_and_a_warning(caplog):
    """Sampling from non-finite logits fails inside torch.multinomial; the run goes on."""
    from types import SimpleNamespace

    from nlpseq.tasks.callbacks import TextSample

    class Diverged:
        training = True

        def complete(self, *args, **kwargs):
            raise AssertionError("sampled from a model whose outputs are not finite")

    trainer = SimpleNamespace(sanity_checking=False, global_step=5,
                              callback_metrics={"val/loss": torch.tensor(float("nan"))})
    with caplog.at_level("WARNING"):
        TextSample().on_validation_end(trainer, Diverged())
    assert "No sample at step 5: the validation metrics are not finite" in caplog.text
