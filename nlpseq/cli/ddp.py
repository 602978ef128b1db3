"""DDP under Hydra without the trap of one output directory per process.

With ``strategy=ddp`` Lightning starts the other ranks by running the command again. Its
own command for a Hydra app repeats ``sys.argv`` and sets ``hydra.run.dir`` to the *run*
pattern: inside a sweep (``-m``) that starts a new sweep in every child, or puts the
children in a fresh ``outputs/train/<time>`` folder. ``child_command`` rebuilds the
command from this job's own overrides and its output directory instead, so every rank of
a job — in a single run or in a sweep — works in that job's directory, and only rank 0
writes metrics (see ``nlpseq.cli.train``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_original_cwd

from nlpseq.compat import start_ddp_ranks_with


def child_command(local_rank: int) -> tuple[list[str], str]:
    """The command and working directory of DDP rank ``local_rank`` (> 0) of this job."""
    hydra_cfg = HydraConfig.get()
    command = [sys.executable, "-m", "nlpseq.cli.train", *hydra_cfg.overrides.task,
               f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
               f"hydra.job.name=ddp_rank_{local_rank}", "hydra.output_subdir=null"]
    return command, get_original_cwd()


def launch_ranks_in_this_job() -> None:
    """Make Lightning start DDP ranks with ``child_command``."""
    start_ddp_ranks_with(child_command)


@contextmanager
def ddp_job() -> Iterator[None]:
    """Undo a job's DDP set-up when it ends: the process group and the environment
    variables Lightning sets for its ranks. Without this the next job of a sweep, in the
    same process, would take its ranks as already started and wait for them."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        os.environ.clear()
        os.environ.update(saved)
