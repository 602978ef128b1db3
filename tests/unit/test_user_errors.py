"""What the commands print in one line instead of a traceback."""

import pytest
from hydra.errors import InstantiationException

from nlpseq.cli.common import user_error
from nlpseq.errors import NlpseqError


def wrapped(cause: BaseException) -> InstantiationException:
    """As Hydra's instantiate wraps what a constructor raised."""
    try:
        raise InstantiationException("Error in call to target 'SentimentTask'") from cause
    except InstantiationException as err:
        return err


@pytest.mark.parametrize("cause", [
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate "
                 "memory: you tried to allocate 2048000000000 bytes."),
    RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    MemoryError(),
])
def test_a_model_too_large_for_memory_is_a_user_error(cause):
    found = user_error(wrapped(cause))
    assert isinstance(found, NlpseqError)
    assert str(found).startswith("out of memory (")
    assert str(found).endswith("make the model or the batch smaller (encoder.hidden_size, "
                               "task.embedding_dim, data.batch_size)")


def test_other_failures_stay_failures_with_their_traceback():
    assert user_error(wrapped(RuntimeError("shape mismatch"))) is None
    assert user_error(ValueError("boom")) is None
