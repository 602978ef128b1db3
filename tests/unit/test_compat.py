"""The private Lightning names nlpseq.compat relies on exist in the installed version, and
that version lies in the range pyproject.toml pins (so a new Lightning fails here first)."""

import inspect
import re
from pathlib import Path

import pytorch_lightning as pl
from packaging.specifiers import SpecifierSet
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.strategies.launchers import subprocess_script

from nlpseq import compat

ROOT = Path(__file__).resolve().parents[2]


def test_the_pinned_range_is_pyprojects_and_holds_the_installed_lightning():
    pyproject = (ROOT / "pyproject.toml").read_text()  # no tomllib before Python 3.11
    pinned = re.search(r'^\s*"pytorch-lightning([^"]*)"', pyproject, re.MULTILINE).group(1)
    specifier = SpecifierSet(pinned)
    assert specifier == SpecifierSet(",".join(compat.LIGHTNING_VERSIONS))
    assert pl.__version__ in specifier


def test_the_private_names_exist_with_the_signatures_used():
    assert list(inspect.signature(ModelCheckpoint._save_checkpoint).parameters) == [
        "self", "trainer", "filepath"]
    checkpoint = ModelCheckpoint()
    assert hasattr(checkpoint, "_last_global_step_saved")
    assert hasattr(checkpoint, "_last_checkpoint_saved")
    assert callable(subprocess_script._hydra_subprocess_cmd)


def test_ddp_ranks_start_with_the_command_given(monkeypatch):
    monkeypatch.setattr(subprocess_script, "_hydra_subprocess_cmd", None)

    def command(local_rank):
        return ["run", str(local_rank)], "."
    compat.start_ddp_ranks_with(command)
    assert subprocess_script._hydra_subprocess_cmd is command
