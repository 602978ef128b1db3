"""Callbacks: atomic checkpoint writes (a failing save leaves the previous file intact),
the training-token count and the per-run peak memory."""

import numpy as np
import pytest
import torch

from nlpseq.tasks.callbacks import (
    AtomicModelCheckpoint,
    PeakMemory,
    ThroughputMonitor,
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


def test_throughput_counts_real_tokens_across_reads_and_a_resume():
    monitor = ThroughputMonitor()
    monitor.on_train_epoch_start(None, None)
    for lengths in ([3, 1, 2], [5, 4]):
        monitor.on_train_batch_end(None, None, None, {"lengths": torch.tensor(lengths)}, 0)
    assert monitor.tokens == 15
    monitor.on_train_batch_end(None, None, None, {"lengths": torch.tensor([7])}, 2)
    assert monitor.tokens == 22 and monitor.seconds > 0
    resumed = ThroughputMonitor()
    resumed.load_state_dict(monitor.state_dict())
    resumed.on_train_batch_end(None, None, None, {"lengths": torch.tensor([2, 2])}, 0)
    assert resumed.tokens == 26
    assert resumed.tokens_per_second == pytest.approx(26 / resumed.seconds)
