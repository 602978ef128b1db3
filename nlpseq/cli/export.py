"""``nlpseq-export ckpt_path=RUN format=onnx|torchscript [quantize=dynamic] [output=DIR]``:
a checkpoint's model as a file that runs without nlpseq.

Writes into ``output`` (default ``<run dir>/export/<format>[-int8]``) the model file(s),
the tokenizer and ``export.json`` (``nlpseq.export.exporter``); the directory's path is
printed on standard output. The files are written into a temporary folder and moved into
place, so a failed export leaves nothing; a folder that holds a run's record is refused.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from nlpseq.cli import entry
from nlpseq.cli.common import run_command
from nlpseq.config import ExportConfig, validate_config
from nlpseq.config.targets import allowed_targets
from nlpseq.export.exporter import export_checkpoint

log = logging.getLogger("nlpseq.export")


def export(cfg: DictConfig) -> str:
    """Export the checkpoint; returns the export directory."""
    validate_config(cfg, ExportConfig)
    directory = export_checkpoint(cfg.ckpt_path, cfg.format, cfg.output, cfg.quantize,
                                  trusted=allowed_targets(cfg))
    print(directory)
    return str(directory)


def run(cfg: DictConfig) -> None:
    """What ``nlpseq-export`` runs on the composed config (``nlpseq.cli.entry``)."""
    run_command(export, cfg)


def main() -> None:
    entry.export()


if __name__ == "__main__":
    main()
