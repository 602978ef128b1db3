"""``nlpseq-serve ckpt_path=PATH``: a checkpoint's model behind an HTTP JSON API and a page
to try it (``nlpseq.serving``), on uvicorn."""

from __future__ import annotations

import logging
import socket

from omegaconf import DictConfig

from nlpseq.cli import entry
from nlpseq.cli.common import run_command
from nlpseq.config import ServeConfig, validate_config
from nlpseq.config.targets import allowed_targets
from nlpseq.errors import NlpseqError

log = logging.getLogger("nlpseq.serve")


def serve(cfg: DictConfig) -> None:
    """Load the model, then serve until Ctrl-C."""
    validate_config(cfg, ServeConfig)
    check_address(cfg.host, cfg.port)
    try:
        import uvicorn

        from nlpseq.serving.app import create_app
    except ImportError as err:
        raise NlpseqError(f"nlpseq-serve needs {err.name}: pip install 'nlpseq[serve]'"
                          ) from None
    from nlpseq.api import load

    model = load(cfg.ckpt_path, cfg.accelerator, allowed_targets(cfg))
    app = create_app(model, cfg.max_batch_size, cfg.max_wait_ms, cfg.batching,
                     cfg.max_text_chars, cfg.max_texts, cfg.max_new_tokens_cap,
                     cfg.beam_size_cap)
    log.info("Serving %s on http://%s:%d (page: /, API docs: /docs)", model, cfg.host, cfg.port)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


def check_address(host: str, port: int) -> None:
    """Refuse, before the model is loaded, an address the server could not listen on (a
    port out of range or in use, a host this machine does not have): uvicorn would log the
    failure after a line saying it serves there."""
    if not 0 <= port <= 65535:
        raise NlpseqError(f"port={port} is not a port: expected 0..65535")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as err:
        raise NlpseqError(f"cannot listen on {host}:{port} ({err.strerror or err}); pick "
                          "another port= or host=") from None


def run(cfg: DictConfig) -> None:
    """What ``nlpseq-serve`` runs on the composed config (``nlpseq.cli.entry``)."""
    run_command(serve, cfg)


def main() -> None:
    entry.serve()


if __name__ == "__main__":
    main()
