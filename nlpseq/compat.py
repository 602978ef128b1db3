"""Every private name of Lightning that nlpseq relies on, in one place.

Lightning offers no public hook for two things nlpseq needs:

- how ``ModelCheckpoint`` writes its file: nlpseq writes a temporary file and renames it
  over the old one, so a run killed mid-write never leaves a corrupt ``best.ckpt``
  (``ModelCheckpoint._save_checkpoint`` and the bookkeeping it keeps);
- the command that starts the other DDP ranks of a Hydra app
  (``subprocess_script._hydra_subprocess_cmd``): nlpseq starts them in the job's own
  directory (see ``nlpseq.cli.ddp``).

``tests/unit/test_compat.py`` checks both against the installed Lightning, whose version
must lie in ``LIGHTNING_VERSIONS``, the range ``pyproject.toml`` pins.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from weakref import proxy

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.strategies.launchers import subprocess_script

LIGHTNING_VERSIONS = (">=2.2", "<2.7")  # as in pyproject.toml's dependency on it


class AtomicWriteCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose files are replaced atomically (write temp, then rename).
    Subclasses hear of each save through ``after_save``."""

    def _save_checkpoint(self, trainer, filepath: str) -> None:  # Lightning's private hook
        path = Path(filepath)
        temporary = path.with_name(f".{path.name}.partial")
        try:
            trainer.save_checkpoint(str(temporary), self.save_weights_only)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        if trainer.is_global_zero:
            os.replace(temporary, path)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
        self.after_save(trainer)

    def save_now(self, trainer, filepath: str) -> None:
        """Save the trainer's current state to ``filepath`` as this callback saves."""
        self._save_checkpoint(trainer, filepath)

    def after_save(self, trainer) -> None:
        """Called after every checkpoint this callback writes (override)."""


def start_ddp_ranks_with(command: Callable[[int], tuple[list[str], str]]) -> None:
    """Make Lightning start the DDP ranks > 0 of a Hydra app with ``command(local_rank)``
    -> (argv, working directory). Lightning looks the builder up in its launcher module
    when it launches, so replacing the name there is enough."""
    if hasattr(subprocess_script, "_hydra_subprocess_cmd"):
        subprocess_script._hydra_subprocess_cmd = command
