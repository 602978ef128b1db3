"""Language modelling with any recurrent cell: training, evaluation and text generation.

Two kinds of batches arrive (see ``nlpseq.data.language_model``): contiguous blocks of a
token stream, marked by a ``block`` index, whose recurrent state is carried from one block
to the next and detached in between (truncated BPTT); and padded lines, which start from
a zero state. Metrics: loss in nats per token, perplexity, and bits per character for
character-level tokenizers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from rich.table import Table
from torch import Tensor

from nlpseq.decoding import check_sampling_options, decode
from nlpseq.encoders import RecurrentEncoder
from nlpseq.errors import NlpseqError
from nlpseq.models import RecurrentLanguageModel
from nlpseq.models.language_model import UNIDIRECTIONAL_ONLY
from nlpseq.tasks.base import RecurrentTask
from nlpseq.tasks.finetune import FineTuning

log = logging.getLogger(__name__)


def detach_state(state):
    """Cut the graph behind a recurrent state: gradients stop at the block boundary."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def move_state(state, device: torch.device):
    """A recurrent state (a tensor, or the LSTM's (h, c)) on ``device``."""
    if isinstance(state, tuple):
        return tuple(s.to(device) for s in state)
    return state.to(device)


def checked_state(state):
    """A carried state read from a checkpoint: None, a tensor or a tuple of two tensors."""
    if isinstance(state, list):
        state = tuple(state)
    if state is None or isinstance(state, Tensor) or (
            isinstance(state, tuple) and len(state) == 2
            and all(isinstance(s, Tensor) for s in state)):
        return state
    raise NlpseqError("The checkpoint's nlpseq_stream_state is not a recurrent state (a "
                      f"tensor or a pair of tensors); got {type(state).__name__}")


def start_token_id(data_cfg, tokenizer) -> int:
    """The token that precedes text in training, so a prompt starts where text starts.

    Lines start with ``<bos>``. A stream has no start: what comes before a line there is
    the end of the previous one — ``<eos>``, or the newline character in ``newline`` mode.
    """
    if data_cfg.get("mode", "stream") == "lines":
        return tokenizer.bos_id
    if data_cfg.get("line_end") == "newline" and tokenizer.token_to_id("\n") is not None:
        return tokenizer.token_to_id("\n")
    return tokenizer.eos_id


@contextmanager
def single_steps_without_onednn() -> Iterator[None]:
    """Run one-token recurrent steps on PyTorch's own CPU kernels.

    oneDNN's LSTM is fast over a long sequence but slow for the one-step calls of
    generation on a CPU: 7.8 ms against 1.0 ms per token for a 2 x 512 LSTM at batch 1
    (2-core CPU, ``generate`` timed with the backend on and off). GRU and RNN steps cost
    the same either way; GPUs do not use oneDNN.
    """
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


class GenerationTask(RecurrentTask):
    """Train and evaluate a ``RecurrentLanguageModel``; generate text from a prompt.

    Args:
        encoder, optimizer, scheduler: Hydra partials from ``conf/encoder``,
            ``conf/optimizer`` and ``conf/scheduler`` (scheduler may be None).
        vocab_size, pad_id: fixed by the tokenizer.
        embedding_dim, embedding_dropout, output_dropout, locked_dropout, tie_weights:
            see ``RecurrentLanguageModel``.
        monitor, monitor_mode: the validation metric that picks the best checkpoint.
        finetune: how pretrained layers train (``nlpseq.tasks.finetune.FineTuning``).
        char_level: the tokenizer is character level: also report bits per character.
        tokenizer, start_id: for generating text during training and from checkpoints.
        reverse: the model reads text right to left (``data.reverse``, a backward language
            model): it is evaluated and transferred, not asked to continue a prompt.
    """

    task_name = "generation"
    text_option = "prompt"
    streams_text = True
    logged_metrics = ("loss", "ppl", "bpc")
    predict_options = ("max_new_tokens", "greedy", "temperature", "top_k", "top_p", "seed",
                       "stop_at_eos")

    def __init__(
        self,
        encoder: Callable[..., RecurrentEncoder],
        optimizer: Callable[..., torch.optim.Optimizer],
        vocab_size: int,
        scheduler: Callable[..., dict] | None = None,
        pad_id: int = 0,
        embedding_dim: int = 256,
        embedding_dropout: float = 0.1,
        output_dropout: float = 0.3,
        locked_dropout: bool = True,
        tie_weights: bool = True,
        monitor: str = "val/loss",
        monitor_mode: Literal["min", "max"] = "min",
        char_level: bool = False,
        tokenizer=None,
        start_id: int = 2,
        finetune: FineTuning | None = None,
        reverse: bool = False,
    ) -> None:
        super().__init__(optimizer, scheduler, finetune)
        self.model = RecurrentLanguageModel(
            encoder, vocab_size=vocab_size, pad_id=pad_id, embedding_dim=embedding_dim,
            embedding_dropout=embedding_dropout, output_dropout=output_dropout,
            locked_dropout=locked_dropout, tie_weights=tie_weights,
        )
        self.pad_id, self.char_level = pad_id, char_level
        self.tokenizer, self.start_id, self.reverse = tokenizer, start_id, reverse
        self.monitor, self.monitor_mode = monitor, monitor_mode
        self._states: dict[str, object] = {}  # carried state per loop: train / val
        self._resumed_state = None  # the training stream's state in a resumed checkpoint

    @classmethod
    def runtime_arguments(cls, cfg, tokenizer, label_names) -> dict:
        return {**super().runtime_arguments(cfg, tokenizer, label_names),
                "char_level": tokenizer.kind == "char", "tokenizer": tokenizer,
                "start_id": start_token_id(cfg.data, tokenizer),
                "reverse": bool(cfg.data.get("reverse", False))}

    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.encoder.get("bidirectional"):
            raise NlpseqError(UNIDIRECTIONAL_ONLY)

    def transfer_parts(self, side: str = "encoder") -> dict:
        """Embedding, encoder and the output layer (a language model continued on new text
        keeps all three)."""
        return {**super().transfer_parts(side), "output": self.model.head}

    # ------------------------------------------------------------------ training
    def _loss(self, batch: dict[str, Tensor], loop: str) -> tuple[Tensor, Tensor]:
        """Mean cross-entropy over real target tokens, carrying state for stream blocks,
        and the number of those tokens (a tensor on the batch's device: read it only when
        needed, as reading it makes the CPU wait for the GPU)."""
        stream = "block" in batch
        state = None
        if stream and int(batch["block"]) > 0:
            state = self._states.get(loop)
        logits, state = self.model(batch["tokens"], None if stream else batch["lengths"], state)
        if stream:
            self._states[loop] = detach_state(state)
        targets = batch["targets"]  # (B, T)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=self.pad_id)
        return loss, (targets != self.pad_id).sum()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, count = self._loss(batch, "train")
        self.log_train("train/loss", loss, batch_size=count)
        return loss

    # ---------------------------------------------------------------- evaluation
    def eval_step(self, batch: dict[str, Tensor], **options) -> dict:
        """The summed loss (nats) and the number of target tokens. A stream's first block
        (``block`` 0) starts from a zero state, so every evaluation starts its streams anew."""
        loss, count = self._loss(batch, "val")
        return {"nll": loss * count, "tokens": count}

    def summarize(self, sums: dict, **options) -> dict:
        """Loss (nats per token), perplexity, bits per character, and the token count."""
        nats = float(sums["nll"]) / max(1, int(sums["tokens"]))
        metrics = {"loss": nats, "ppl": math.exp(min(nats, 700.0))}
        if self.char_level:
            metrics["bpc"] = nats / math.log(2)
        return {**metrics, "tokens": int(sums["tokens"])}

    def report_tables(self, report: dict, prefix: str) -> list:
        table = Table(title=f"{prefix}: {report[f'{prefix}/tokens']} tokens")
        columns = [("loss (nats/token)", "loss"), ("perplexity", "ppl"), ("bits/char", "bpc")]
        shown = [(title, key) for title, key in columns if f"{prefix}/{key}" in report]
        for title, _ in shown:
            table.add_column(title, justify="right")
        table.add_row(*(f"{report[f'{prefix}/{key}']:.4f}" for _, key in shown))
        return [table]

    # ------------------------------------------------------------------ resuming
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Stream mode: keep the state carried into the next training block, so that a run
        resumed in the middle of an epoch starts that block from it, as a run that never
        stopped does (None in lines mode)."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["nlpseq_stream_state"] = self._states.get("train")

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self._resumed_state = checked_state(checkpoint.get("nlpseq_stream_state"))

    def on_train_start(self) -> None:
        """Carry the resumed state on, on the model's device. Under DDP the checkpoint holds
        rank 0's streams only: every rank then starts the resumed block from a zero state."""
        super().on_train_start()
        state, self._resumed_state = self._resumed_state, None
        if state is not None and self.trainer.world_size == 1:
            self._states["train"] = move_state(state, self.device)

    # ---------------------------------------------------------------- generation
    def prompt_ids(self, prompt: str) -> list[int]:
        """The start token and the prompt's ids; unknown characters become ``<unk>``."""
        ids = self.tokenizer.encode(prompt) if prompt else []
        if self.tokenizer.unk_id in ids:
            unknown = sorted({c for c in prompt if not c.isspace()
                              and self.tokenizer.token_to_id(c) is None})
            shown = f": {' '.join(map(repr, unknown))}" if self.char_level and unknown else ""
            log.warning("The prompt has %d piece(s) unknown to the tokenizer, read as <unk>%s",
                        ids.count(self.tokenizer.unk_id), shown)
        return [self.start_id, *ids]

    @torch.no_grad()
    def generate(self, prompt_ids: list[int], max_new_tokens: int, *, stop_at_eos: bool = True,
                 on_token: Callable[[Tensor], None] | None = None, **options) -> list[int]:
        """New token ids after ``prompt_ids``, reading the prompt once and then one step per
        token. ``options``: greedy, temperature, top_k, top_p, seed (``nlpseq.decoding``)."""
        self.eval()
        tokens = torch.tensor([prompt_ids], device=self.device)  # (1, P)
        state = None
        if tokens.size(1) > 1:
            _, state = self.model(tokens[:, :-1], None, None)  # the whole prompt but its last
        eos = self.tokenizer.eos_id if stop_at_eos else None
        with single_steps_without_onednn():
            new = decode(self.model.step, tokens[:, -1], state, max_new_tokens, eos_id=eos,
                         on_token=on_token, **options)  # (1, N)
        return new[0].tolist()

    def decode_text(self, ids: list[int]) -> str:
        """Text of generated ids; an ``<eos>`` inside a continuation reads as a line break."""
        lines, current = [], []
        for i in ids:
            if i == self.tokenizer.eos_id:
                lines.append(current)
                current = []
            else:
                current.append(i)
        return "\n".join(self.tokenizer.decode(line) for line in [*lines, current])

    def continuation_text(self, context: list[int], ids: list[int]) -> str:
        """Text of ``ids`` as it follows the ``context`` ids: with the space a word-level
        tokenizer puts between the prompt's last word and the first new one."""
        if not context:
            return self.decode_text(ids)
        before, whole = self.decode_text(context), self.decode_text(context + ids)
        return whole[len(before):] if whole.startswith(before) else self.decode_text(ids)

    def complete(self, prompt: str, max_new_tokens: int, *, stop_at_eos: bool = True,
                 on_text: Callable[[str], None] | None = None, **options) -> str:
        """The continuation of ``prompt`` as text; ``on_text`` receives it piece by piece.
        A final ``<eos>`` (the stop) is not part of the text."""
        ids: list[int] = []
        shown = ""
        prompt_ids = self.prompt_ids(prompt)  # the start token, then the prompt's ids
        context = prompt_ids[1:][-8:]  # enough of the prompt to space the continuation

        def stream(tokens: Tensor) -> None:
            nonlocal shown
            if stop_at_eos and int(tokens[0]) == self.tokenizer.eos_id:
                return
            ids.append(int(tokens[0]))
            text = self.continuation_text(context, ids)
            if on_text is not None and text.startswith(shown) and len(text) > len(shown):
                on_text(text[len(shown):])
                shown = text

        generated = self.generate(prompt_ids, max_new_tokens, on_token=stream,
                                  stop_at_eos=stop_at_eos, **options)
        if stop_at_eos and self.tokenizer.eos_id in generated:
            generated = generated[:generated.index(self.tokenizer.eos_id)]
        text = self.continuation_text(context, generated)
        if on_text is not None and len(text) > len(shown) and text.startswith(shown):
            on_text(text[len(shown):])
        return text

    @property
    def reads_lines(self) -> bool:
        """Trained on separate lines (``data.mode=lines``, whose texts start with ``<bos>``),
        not on one stream where ``<eos>`` is only a line break."""
        return self.start_id == self.tokenizer.bos_id

    def predict(self, texts: list[str], max_new_tokens: int = 200,
                on_text: Callable[[str], None] | None = None,
                stop_at_eos: bool | None = None, **options) -> list[dict]:
        """The continuation of each prompt; ``on_text`` receives a single prompt, then its
        continuation piece by piece (the options are checked first). ``stop_at_eos``
        (None: the model's way): a model of separate lines ends its text at ``<eos>``; in
        a stream ``<eos>`` is a line break and generation goes on to ``max_new_tokens``.
        ``options``: greedy, temperature, top_k, top_p, seed."""
        if self.reverse:
            raise NlpseqError("this is a backward language model (data.reverse=true): it reads "
                              "text right to left and starts the reverse direction of an "
                              "encoder (encoder.init_from_backward); it does not continue a prompt")
        check_sampling_options(max_new_tokens, options.get("temperature", 1.0),
                               options.get("top_k"), options.get("top_p", 1.0))
        options["stop_at_eos"] = self.reads_lines if stop_at_eos is None else stop_at_eos
        if texts == [""]:
            log.info("Empty prompt: generating from the start token %r",
                     self.tokenizer.id_to_token(self.start_id))
        if on_text is not None and len(texts) == 1:
            on_text(texts[0])
        return [{"prompt": prompt, "continuation": self.complete(prompt, max_new_tokens,
                                                                  on_text=on_text, **options)}
                for prompt in texts]

    # ---------------------------------------------------------------- inspection
    def reading_order(self, ids: list[int]) -> list[int]:
        return ids[::-1] if self.reverse else ids

    def text_loss(self, ids: list[int]):
        """The next-token loss on the text (None for a single token)."""
        if len(ids) < 2:
            log.info("No gradient-flow curve: the text needs 2 tokens or more")
            return None
        tokens = torch.tensor([ids])

        def loss() -> Tensor:
            logits, _ = self.model(tokens[:, :-1], None)  # (1, T - 1, V)
            return F.cross_entropy(logits[0], tokens[0, 1:])
        return loss
