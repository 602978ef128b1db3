"""Translation with any encoder cell and any decoder cell: training, BLEU, decoding.

Training minimises label-smoothed cross-entropy with teacher forcing (optionally
scheduled sampling with a ratio that moves linearly over training). Validation reports
the loss, perplexity and — decoding greedily — sacrebleu BLEU and chrF on detokenized
output, so the best checkpoint can be picked by BLEU. ``evaluate`` and ``translate`` use
batched beam search with the GNMT length penalty. Hypothesis lengths are capped at
``max_length_ratio * source length + max_length_offset`` tokens (fairseq's max_len_a/b).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from rich.table import Table
from sacrebleu.metrics import BLEU, CHRF
from torch import Tensor

from nlpseq.checks import check_probability, is_int
from nlpseq.decoding import beam_search, greedy
from nlpseq.diagnostics import save_attention
from nlpseq.encoders import RecurrentEncoder
from nlpseq.errors import NlpseqError
from nlpseq.heads.decoder import RecurrentDecoder
from nlpseq.models import RecurrentTranslator
from nlpseq.tasks.base import RecurrentTask, length_batches
from nlpseq.tasks.finetune import FineTuning
from nlpseq.tasks.generation import single_steps_without_onednn
from nlpseq.tokenization import train_tokenizer_pair
from nlpseq.tokenization.pair import TokenizerPair

log = logging.getLogger(__name__)


def check_beam_options(beam_size, n_best: int = 1, length_penalty: float = 0.0) -> None:
    """One clear line for a bad beam size, n-best or length penalty."""
    if not is_int(beam_size) or beam_size < 1:
        raise NlpseqError(f"beam_size must be an integer >= 1; got {beam_size!r}")
    if not is_int(n_best) or not 1 <= n_best <= beam_size:
        raise NlpseqError(f"n_best must be an integer in [1, beam_size={beam_size}]; "
                          f"got {n_best!r}")
    if length_penalty < 0:
        raise NlpseqError(f"length_penalty must be >= 0; got {length_penalty!r}")


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict:
    """sacrebleu BLEU and chrF of detokenized hypotheses against one reference each."""
    bleu, chrf = BLEU(), CHRF()
    return {"bleu": bleu.corpus_score(hypotheses, [references]).score,
            "chrf": chrf.corpus_score(hypotheses, [references]).score,
            "bleu_signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature())}


class TranslationTask(RecurrentTask):
    """Train and evaluate a ``RecurrentTranslator``; translate sentences.

    Args:
        encoder, decoder, optimizer, scheduler: Hydra partials from ``conf/encoder``,
            ``task.decoder``, ``conf/optimizer`` and ``conf/scheduler``.
        vocab_size, target_vocab_size, pad_id, tokenizer: fixed by the ``TokenizerPair``.
        embedding_dim, embedding_dropout, tie_embeddings: see ``RecurrentTranslator``.
        joint_vocabulary: one tokenizer and one embedding for both languages.
        label_smoothing: training loss smoothing (Szegedy et al. 2016); validation and
            test losses are plain cross-entropy.
        teacher_forcing: share of gold previous tokens while training; with
            ``teacher_forcing_final`` it moves linearly to that value over training.
        val_bleu: decode the validation set greedily every validation for BLEU and chrF.
        beam_size, length_penalty, max_length_ratio, max_length_offset: decoding defaults
            of ``evaluate`` and ``translate`` (length_penalty is GNMT's alpha).
        monitor, monitor_mode: the validation metric that picks the best checkpoint.
        finetune: how pretrained layers train (``nlpseq.tasks.finetune.FineTuning``).
    """

    task_name = "translation"
    predict_options = ("beam_size", "length_penalty", "n_best", "batch_size", "attention_file")
    keeps_empty_lines = True  # one output line per input line
    one_tokenizer = False  # init_from: a pretrained side's tokenizer, the other side trains its own
    logged_metrics = ("loss", "ppl", "bleu", "chrf")

    def __init__(
        self,
        encoder: Callable[..., RecurrentEncoder],
        decoder: Callable[..., RecurrentDecoder],
        optimizer: Callable[..., torch.optim.Optimizer],
        vocab_size: int,
        target_vocab_size: int,
        scheduler: Callable[..., dict] | None = None,
        pad_id: int = 0,
        tokenizer=None,
        embedding_dim: int = 256,
        embedding_dropout: float = 0.2,
        tie_embeddings: bool = True,
        joint_vocabulary: bool = False,
        label_smoothing: float = 0.1,
        teacher_forcing: float = 1.0,
        teacher_forcing_final: float | None = None,
        val_bleu: bool = True,
        beam_size: int = 5,
        length_penalty: float = 0.6,
        max_length_ratio: float = 1.5,
        max_length_offset: int = 5,
        monitor: str = "val/bleu",
        monitor_mode: Literal["min", "max"] = "max",
        finetune: FineTuning | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler, finetune)
        check_beam_options(beam_size, 1, length_penalty)
        for name, value in (("teacher_forcing", teacher_forcing),
                            ("teacher_forcing_final", teacher_forcing_final)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise NlpseqError(f"task.{name} must be in [0, 1]; got {value}")
        self.model = RecurrentTranslator(
            encoder, decoder, vocab_size, target_vocab_size, pad_id=pad_id,
            embedding_dim=embedding_dim, embedding_dropout=embedding_dropout,
            tie_embeddings=tie_embeddings, share_embeddings=joint_vocabulary,
        )
        self.tokenizer, self.pad_id = tokenizer, pad_id
        self.label_smoothing = check_probability("label_smoothing", label_smoothing)
        self.teacher_forcing, self.teacher_forcing_final = teacher_forcing, teacher_forcing_final
        self.val_bleu = val_bleu
        self.beam_size, self.length_penalty = beam_size, length_penalty
        self.max_length_ratio, self.max_length_offset = max_length_ratio, max_length_offset
        self.monitor, self.monitor_mode = monitor, monitor_mode
        self._val: dict[str, list] = {}

    @classmethod
    def check_config(cls, cfg) -> None:
        task = cfg.task
        if str(task.get("monitor", "")).endswith(("bleu", "chrf")) and not task.get("val_bleu",
                                                                                  True):
            raise NlpseqError(f"task.monitor={task.monitor} needs task.val_bleu=true "
                              "(or monitor val/loss with task.monitor_mode=min)")
        decoder = task.get("decoder") or {}
        if decoder.get("init_from") and (decoder.get("input_feeding", True)
                                         or decoder.get("attention") == "bahdanau"):
            raise NlpseqError("task.decoder.init_from needs task.decoder.input_feeding=false "
                              "and an attention other than bahdanau: the decoder's RNN then "
                              "reads the target embedding alone, as the language model's did")
        model = str(cfg.tokenizer.get("model", cfg.tokenizer.get("model_type", "")))
        if model in ("word", "wordpiece"):
            log.warning("tokenizer=%s does not restore the original spacing of punctuation; "
                        "BLEU is computed on its output as decoded (sp_unigram or sp_bpe "
                        "restore the text exactly)", model)

    @classmethod
    def runtime_arguments(cls, cfg, tokenizer, label_names) -> dict:
        return {**super().runtime_arguments(cfg, tokenizer, label_names),
                "target_vocab_size": tokenizer.target.vocab_size, "tokenizer": tokenizer}

    @classmethod
    def train_tokenizer(cls, factory, datamodule, cfg):
        """A tokenizer per language, or one joint (``task.joint_vocabulary``)."""
        return train_tokenizer_pair(factory, datamodule.train_texts("source"),
                                    datamodule.train_texts("target"),
                                    joint=cfg.task.get("joint_vocabulary", False))

    # ------------------------------------------------------------------ transfer
    def transfer_parts(self, side: str = "encoder") -> dict:
        """Source side (``encoder``): source embedding and encoder. Target side
        (``decoder``): target embedding, the decoder's RNN and the output layer."""
        if side == "encoder":
            return {"embedding": self.model.source_embedding, "recurrent": self.model.encoder}
        return {"embedding": self.model.target_embedding, "recurrent": self.model.decoder.rnn,
                "output": self.model.head}

    def transfer_tokenizer(self, side: str = "encoder"):
        return self.tokenizer.source if side == "encoder" else self.tokenizer.target

    @classmethod
    def pretrained_tokenizer(cls, tokenizers: dict, factory, datamodule, cfg):
        """The source side reads with the encoder run's tokenizer and the target side with
        the decoder run's; a side with no pretrained run trains its own."""
        if cfg.task.get("joint_vocabulary", False):
            raise NlpseqError("task.joint_vocabulary=true trains one tokenizer for both "
                              "languages; a pretrained run brings its own: set "
                              "task.joint_vocabulary=false with init_from")
        source = tokenizers.get("encoder") or factory(datamodule.train_texts("source"))
        target = tokenizers.get("decoder") or factory(datamodule.train_texts("target"))
        return TokenizerPair(source, target)

    # ------------------------------------------------------------------ training
    def teacher_forcing_ratio(self) -> float:
        """The share of gold previous tokens now: constant, or linear over training."""
        if self.teacher_forcing_final is None or self._trainer is None:
            return self.teacher_forcing
        total = max(1, int(self.trainer.estimated_stepping_batches))
        progress = min(1.0, self.trainer.global_step / total)
        return self.teacher_forcing + (self.teacher_forcing_final - self.teacher_forcing) * progress

    def _logits(self, batch: dict, teacher_forcing: float = 1.0) -> Tensor:
        logits, _ = self.model(batch["source"], batch["source_lengths"], batch["target_inputs"],
                               teacher_forcing)
        return logits  # (B, T, V)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        logits = self._logits(batch, self.teacher_forcing_ratio())
        loss = F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten(),
                               ignore_index=self.pad_id, label_smoothing=self.label_smoothing)
        self.log_train("train/loss", loss, batch_size=batch["lengths"].sum())
        return loss

    def _summed_nll(self, batch: dict) -> Tensor:
        logits = self._logits(batch)
        return F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten(),
                               ignore_index=self.pad_id, reduction="sum")

    # ---------------------------------------------------------------- evaluation
    def eval_options(self, beam_size: int | None = None,
                     length_penalty: float | None = None) -> dict:
        """Decode with ``beam_size`` (default: ``task.beam_size``) and ``length_penalty``."""
        beam_size = self.beam_size if beam_size is None else beam_size
        check_beam_options(beam_size, 1, 0.0 if length_penalty is None else length_penalty)
        return {"beam_size": beam_size, "length_penalty": length_penalty}

    def eval_step(self, batch: dict, beam_size: int | None = None,
                  length_penalty: float | None = None) -> dict:
        """The summed loss and token count and, when decoding (always in ``evaluate``;
        greedily in validation when ``val_bleu``), the hypotheses with their references,
        positions in the split and decoding time. A pair with an empty source (``unread_``:
        left out of the batch's tensors) adds no loss and has the empty hypothesis."""
        read = len(batch["references"]) > 0
        sums = {"nll": self._summed_nll(batch) if read else torch.zeros((), device=self.device),
                "tokens": batch["lengths"].sum()}
        if beam_size is None and not self.val_bleu:
            return sums
        if sums["nll"].is_cuda:  # time the decoding alone, not the queued loss
            torch.cuda.synchronize()
        started = time.perf_counter()
        found = self.translate_batch(batch["source"], batch["source_lengths"], beam_size or 1,
                                     length_penalty) if read else []
        sums["decode_s"] = time.perf_counter() - started
        sums["hypotheses"] = [hyps[0][0] for hyps in found] + [""] * len(batch["unread_index"])
        sums["references"] = [*batch["references"], *batch["unread_references"]]
        sums["order"] = [*batch["index"].tolist(), *batch["unread_index"]]
        return sums

    def summarize(self, sums: dict, beam_size: int | None = None, **options) -> dict:
        """Loss, perplexity and, with hypotheses, BLEU and chrF (with sacrebleu signatures),
        sentences per second and the hypotheses in the split's order."""
        nats = float(sums["nll"]) / max(1, int(sums["tokens"]))
        metrics = {"loss": nats, "ppl": math.exp(min(nats, 700.0))}
        if not sums.get("hypotheses"):
            return metrics
        ranked = sorted(range(len(sums["order"])), key=sums["order"].__getitem__)
        hypotheses = [sums["hypotheses"][i] for i in ranked]
        scores = corpus_scores(hypotheses, [sums["references"][i] for i in ranked])
        decode_s = sums["decode_s"]
        return {**scores, **metrics, "sentences": len(hypotheses),
                "beam_size": beam_size or 1,
                "sentences_per_s": len(hypotheses) / decode_s if decode_s else 0.0,
                "hypotheses": hypotheses}

    def report_tables(self, report: dict, prefix: str) -> list:
        """BLEU and chrF (with the sacrebleu signature), loss, perplexity, decoding speed."""
        table = Table(title=f"{prefix}: {report[f'{prefix}/sentences']} sentences, beam "
                            f"{report[f'{prefix}/beam_size']}")
        columns = [("BLEU", "bleu", "{:.2f}"), ("chrF", "chrf", "{:.2f}"),
                   ("loss", "loss", "{:.4f}"), ("perplexity", "ppl", "{:.2f}"),
                   ("sentences/s", "sentences_per_s", "{:.1f}")]
        for title, _, _ in columns:
            table.add_column(title, justify="right")
        table.add_row(*(form.format(report[f"{prefix}/{key}"]) for _, key, form in columns))
        return [table, f"sacrebleu BLEU {report[f'{prefix}/bleu_signature']}",
                f"sacrebleu chrF {report[f'{prefix}/chrf_signature']}"]

    # ---------------------------------------------------------------- decoding
    def max_lengths(self, source_lengths: Tensor) -> Tensor:
        """The most target tokens (``<eos>`` included) each source may get. Shape (B,)."""
        return (source_lengths.float() * self.max_length_ratio).ceil().long() + \
            self.max_length_offset

    @torch.inference_mode()
    def translate_batch(self, source: Tensor, source_lengths: Tensor, beam_size: int = 1,
                        length_penalty: float | None = None,
                        n_best: int = 1, as_ids: bool = False) -> list[list[tuple]]:
        """The ``n_best`` translations of each source row as (text, score), best first;
        greedy for beam_size 1 (score: log-probability), else batched beam search.
        ``as_ids`` gives target ids instead of text."""
        check_beam_options(beam_size, n_best, 0.0 if length_penalty is None else length_penalty)
        was_training = self.training
        self.eval()
        source, source_lengths = source.to(self.device), source_lengths.to(self.device)
        max_lengths = self.max_lengths(source_lengths)
        bos = torch.full((source.size(0),), self.tokenizer.bos_id, device=self.device)
        with single_steps_without_onednn():
            state = self.model.start(source, source_lengths)
            if beam_size == 1:
                ids, scores = self._greedy(bos, state, max_lengths)
                results = [[(row, score)] for row, score in zip(ids, scores, strict=True)]
            else:
                alpha = self.length_penalty if length_penalty is None else length_penalty
                found = beam_search(self.model.step, bos, state, beam_size=beam_size,
                                    max_lengths=max_lengths, eos_id=self.tokenizer.eos_id,
                                    pad_id=self.pad_id, alpha=alpha, n_best=n_best,
                                    reorder_state=self.model.reorder_state)
                results = [[(found.tokens[b, k, :found.lengths[b, k]].tolist(),
                             float(found.scores[b, k])) for k in range(n_best)]
                           for b in range(source.size(0))]
        self.train(was_training)
        if as_ids:
            return results
        decode = self.tokenizer.target.decode
        return [[(decode(ids), score) for ids, score in row] for row in results]

    def _greedy(self, bos: Tensor, state, max_lengths: Tensor) -> tuple[list, list]:
        """Greedy ids (``<eos>`` and what follows it cut) and their log-probabilities."""
        log_probs = []

        def scored_step(tokens, state):
            logits, state = self.model.step(tokens, state)
            log_probs.append(logits.float().log_softmax(-1))  # (B, V)
            return logits, state

        eos = self.tokenizer.eos_id
        new = greedy(scored_step, bos, state, int(max_lengths.max()), eos_id=eos)  # (B, N)
        chosen = torch.stack(log_probs, 1).gather(2, new[..., None]).squeeze(-1)  # (B, N)
        ends = []
        for b, row in enumerate(new.tolist()):
            limit = min(len(row), int(max_lengths[b]))
            ends.append(row.index(eos) + 1 if eos in row[:limit] else limit)
        steps = torch.arange(new.size(1), device=new.device)
        kept = steps[None, :] < torch.tensor(ends, device=new.device)[:, None]  # (B, N)
        scores = (chosen * kept).sum(1).tolist()
        rows = [[i for i in row[:end] if i != eos] for row, end in zip(new.tolist(), ends,
                                                                         strict=True)]
        return rows, scores

    def translate(self, sentences: list[str], beam_size: int | None = None,
                  length_penalty: float | None = None, n_best: int = 1,
                  batch_size: int = 64) -> list[list[tuple[str, float]]]:
        """Translate raw sentences (in their order), batched by length."""
        beam_size = self.beam_size if beam_size is None else beam_size
        results: list = [None] * len(sentences)
        for rows, batch in length_batches(self.source_ids(sentences), batch_size,
                                          self.tokenizer):
            found = self.translate_batch(batch["tokens"], batch["lengths"], beam_size,
                                         length_penalty, n_best)
            for i, hypotheses in zip(rows, found, strict=True):
                results[i] = hypotheses
        return results

    def source_ids(self, sentences: list[str]) -> list[list[int]]:
        """Source ids of raw sentences, spaces normalised as in training; never empty."""
        ids = self.tokenizer.source.encode_batch([" ".join(s.split()) for s in sentences])
        return [seq or [self.tokenizer.unk_id] for seq in ids]

    # ---------------------------------------------------------------- prediction
    def prediction_options(self, given: dict) -> dict:
        """Refuse an attention file for a model without attention before any work."""
        options = super().prediction_options(given)
        if options.get("attention_file") and self.model.decoder.attention is None:
            raise NlpseqError("This model has no attention (task.decoder.attention=none): "
                              "leave attention_file out")
        return options

    def predict(self, texts: list[str], beam_size: int | None = None,
                length_penalty: float | None = None, n_best: int = 1, batch_size: int = 64,
                attention_file: str | None = None) -> list[dict]:
        """The ``n_best`` translations of each line with their scores (an empty line gets
        an empty translation); ``attention_file`` (.json or .png) saves the attention
        weights of the first sentence."""
        beam_size = self.beam_size if beam_size is None else beam_size
        check_beam_options(beam_size, n_best, length_penalty or 0.0)
        wanted = [text for text in texts if text.strip()]
        if attention_file is not None and not wanted:
            raise NlpseqError("attention_file needs a non-empty line to translate")
        found = iter(self.translate(wanted, beam_size, length_penalty, n_best, batch_size))
        rows = [{"source": text, "translations": [{"text": hypothesis, "score": score}
                                                  for hypothesis, score in next(found)]}
                if text.strip() else {"source": text,
                                      "translations": [{"text": "", "score": 0.0}]}
                for text in texts]
        if attention_file is not None:
            path = save_attention(self.attention_map(wanted[0], beam_size), attention_file)
            log.info("Attention weights of %r written to %s", wanted[0][:40], path)
        return rows

    def prediction_lines(self, rows: list[dict], n_best: int = 1, **options) -> list[str]:
        """The best translation of each line, or JSON lines with ``n_best`` > 1."""
        if n_best > 1:
            return super().prediction_lines(rows)
        return [row["translations"][0]["text"] for row in rows]

    # ---------------------------------------------------------------- inspection
    def encoder_inputs(self, batch: dict) -> tuple[Tensor, Tensor | None]:
        return self.model.source_embedding(batch["source"]), batch["source_lengths"]

    def text_batch(self, ids: list[int]) -> dict[str, Tensor]:
        return {"source": torch.tensor([ids]), "source_lengths": torch.tensor([len(ids)])}

    def text_loss(self, ids: list[int]):
        log.info("No gradient-flow curve: a translation loss needs a reference")

    @torch.no_grad()
    def attention_map(self, sentence: str, beam_size: int | None = None) -> dict:
        """Translate one sentence and return the attention weights of every target step
        over the source tokens: ``{"source_tokens", "target_tokens", "weights"}`` with
        weights[t][s] for target token t (``<eos>`` last) and source token s."""
        if self.model.decoder.attention is None:
            raise NlpseqError("This model has no attention (task.decoder.attention=none)")
        source_ids = self.source_ids([sentence])[0]
        source = torch.tensor([source_ids], device=self.device)
        lengths = torch.tensor([len(source_ids)])
        beam_size = self.beam_size if beam_size is None else beam_size
        target_ids = self.translate_batch(source, lengths, beam_size, as_ids=True)[0][0][0]
        inputs = torch.tensor([[self.tokenizer.bos_id, *target_ids]], device=self.device)
        self.eval()
        _, weights = self.model(source, lengths, inputs)  # (1, T, S)
        text = self.tokenizer.target.decode(target_ids)
        token = self.tokenizer.source.id_to_token
        return {"source": sentence, "translation": text,
                "source_tokens": [token(i) for i in source_ids],
                "target_tokens": [self.tokenizer.target.id_to_token(i)
                                  for i in [*target_ids, self.tokenizer.eos_id]],
                "weights": weights[0].cpu().tolist()}
