"""Run an exported ONNX model with onnxruntime, numpy and the tokenizer libraries only
(no torch): ``load("RUN/export/onnx")`` then ``predict(texts)`` (sentiment),
``generate(prompt, ...)`` (generation) or ``translate(texts)`` (translation, greedy).

It reads what ``nlpseq.export.exporter`` wrote — ``export.json``, the model file(s), the
tokenizer — and decodes as the checkpoint's task does: the same start token, the same
stop at ``<eos>``, the same maximum translation length, so greedy outputs are nlpseq's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from nlpseq.errors import NlpseqError
from nlpseq.export.checks import META_FILE, check_meta, check_sessions, invalid, open_session
from nlpseq.tokenization.base import load_tokenizer


def is_export(path) -> bool:
    """Whether ``path`` is what ``nlpseq-export`` wrote: its directory or a model file in it."""
    path = Path(str(path)).expanduser()
    directory = path if path.is_dir() else path.parent
    return (path.is_dir() or path.suffix in (".onnx", ".pt")) and \
        (directory / META_FILE).is_file()


def read_meta(path: str | Path) -> tuple[Path, dict]:
    """The export directory and its ``export.json``; ``path`` is the directory or a model
    file in it. An ``export.json`` that is not what ``nlpseq-export`` writes fails in one
    line (``check_meta``)."""
    path = Path(path).expanduser()
    directory = path if path.is_dir() else path.parent
    meta_path = directory / META_FILE
    if not path.exists():
        raise NlpseqError(f"Exported model not found: '{path}'")
    if not meta_path.is_file():
        raise NlpseqError(f"'{path}' is not an nlpseq export: no {META_FILE} beside it")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise invalid(directory, f"{META_FILE} is not JSON ({err})") from None
    check_meta(meta, directory)
    return directory, meta


def load(path: str | Path) -> ExportedModel:
    """The exported ONNX model at ``path`` (its directory, or a .onnx file in it)."""
    return ExportedModel(path)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def pad(rows: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ids (B, T) int64 and lengths (B,) int64."""
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    ids = np.full((len(rows), int(lengths.max())), pad_id, dtype=np.int64)
    for b, row in enumerate(rows):
        ids[b, :len(row)] = row
    return ids, lengths


def batches(ids: list[list[int]], batch_size: int):
    """Positions of ``ids`` in batches of similar lengths (longest first)."""
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


class ExportedModel:
    """An ONNX export of a sentiment, generation or translation checkpoint.

    Args:
        path: the export directory (with ``export.json``) or a model file in it.
        threads: onnxruntime's intra-op threads (0: its default).
    """

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        import onnxruntime

        directory, self.meta = read_meta(path)
        if self.meta.get("runtime") != "onnx":
            raise NlpseqError(f"'{path}' is a {self.meta.get('runtime')} export; this runtime "
                              "reads ONNX exports (TorchScript: torch.jit.load)")
        self.task = self.meta["task"]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.sessions = {name: open_session(directory, str(file), options)
                         for name, file in self.meta["files"].items()}
        check_sessions(self.meta, self.sessions, directory)
        self.tokenizers = {side: load_tokenizer(directory / folder)
                           for side, folder in self.meta["tokenizer"].items()}
        ids = self.meta["special_ids"]
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = (
            ids["pad"], ids["unk"], ids["bos"], ids["eos"])

    def _need(self, task: str) -> None:
        if self.task != task:
            raise NlpseqError(f"This is a {self.task} model; that call needs a {task} one")

    def run(self, part: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """One model file on named inputs -> its named outputs."""
        session = self.sessions[part]
        found = session.run(self.meta["outputs"][part], inputs)
        return dict(zip(self.meta["outputs"][part], found, strict=True))

    # ---------------------------------------------------------------- nlpseq-predict
    # What nlpseq-predict asks of a model, answered as the checkpoint's task answers it
    # (``RecurrentTask.text_option``, ``prediction_options``, ``predict``, ...).
    streams_text = False

    @property
    def task_name(self) -> str:
        return self.task

    @property
    def text_option(self) -> str:
        """The nlpseq-predict key that gives this model its inputs."""
        return "prompt" if self.task == "generation" else "text"

    @property
    def keeps_empty_lines(self) -> bool:
        """Translation answers an input file line for line."""
        return self.task == "translation"

    @property
    def predict_options(self) -> tuple[str, ...]:
        """The other nlpseq-predict keys this export reads."""
        if self.task == "generation":
            return ("max_new_tokens", "temperature", "greedy", "top_k", "seed", "stop_at_eos")
        if self.task == "translation":  # beam_size 1 and a length penalty: greedy as it is
            return ("batch_size", "beam_size", "length_penalty")
        return ("batch_size",)

    def prediction_options(self, given: dict) -> dict:
        """The given options this export reads; the checkpoint's options that an export
        does not have (beam search, nucleus sampling) are refused in one line."""
        if self.task == "translation" and (given.get("beam_size") not in (None, 1)
                                           or given.get("n_best", 1) != 1
                                           or given.get("attention_file") is not None):
            raise NlpseqError("An exported translation model decodes greedily: leave "
                              "beam_size, n_best and attention_file out")
        if self.task == "generation" and given.get("top_p", 1.0) != 1.0:
            raise NlpseqError("An exported language model samples with temperature and "
                              "top_k; leave top_p out")
        return {key: given[key] for key in self.predict_options if given.get(key) is not None}

    def predict(self, texts: list[str], batch_size: int = 64, **sampling) -> list[dict]:
        """One row per text, as ``nlpseq-predict`` gives them: a sentiment model's label,
        its probability and every label's; a language model's continuation of each prompt
        (``sampling``: ``generate``'s options); a translation model's greedy translation."""
        if self.task == "generation":
            return [{"prompt": prompt, "continuation": self.generate(prompt, **sampling)}
                    for prompt in texts]
        if self.task == "translation":
            return [{"source": text, "translations": [{"text": found}]}
                    for text, found in zip(texts, self.translate(texts, batch_size), strict=True)]
        names = self.meta["label_names"]
        found = []
        for text, p in zip(texts, softmax(self.logits(texts, batch_size)).tolist(), strict=True):
            best = max(range(len(p)), key=p.__getitem__)
            found.append({"text": text, "label": names[best], "probability": p[best],
                          "probabilities": dict(zip(names, p, strict=True))})
        return found

    def prediction_lines(self, rows: list[dict], **options) -> list[str]:
        """Translations one a line; the other tasks' rows as JSON lines."""
        if self.task == "translation":
            return [row["translations"][0]["text"] for row in rows]
        return [json.dumps(row, ensure_ascii=False) for row in rows]

    # ---------------------------------------------------------------- sentiment
    def logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Class logits of each text. Shape (N, C)."""
        self._need("sentiment")
        ids = [row or [self.unk_id] for row in
               self.tokenizers["text"].encode_batch([text.strip() for text in texts])]
        out = np.zeros((len(texts), len(self.meta["label_names"])), dtype=np.float32)
        for rows in batches(ids, batch_size):
            tokens, lengths = pad([ids[i] for i in rows], self.pad_id)
            out[rows] = self.run("model", tokens=tokens, lengths=lengths)["logits"]
        return out

    # ---------------------------------------------------------------- generation
    def zero_state(self, batch: int) -> dict[str, np.ndarray]:
        return {name: np.zeros([batch if s == "batch" else s for s in shape], dtype=np.float32)
                for name, shape in self.meta["state"].items()}

    def generate_ids(self, prompt_ids: list[int], max_new_tokens: int, greedy: bool = True,
                     temperature: float = 1.0, top_k: int | None = None,
                     seed: int | None = None, stop_at_eos: bool = True) -> list[int]:
        """New ids after ``prompt_ids`` (the start token first): the prompt is read in one
        call, then one call per new token with the carried state; ``<eos>`` ends it when
        ``stop_at_eos`` (and is the last id)."""
        self._need("generation")
        rng = np.random.default_rng(seed)
        state = self.zero_state(1)
        if len(prompt_ids) > 1:
            state = self._lm_step(np.array([prompt_ids[:-1]], dtype=np.int64), state)[1]
        token, new = prompt_ids[-1], []
        for _ in range(max_new_tokens):
            logits, state = self._lm_step(np.array([[token]], dtype=np.int64), state)
            scores = logits[0, -1].astype(np.float64)
            if greedy:
                token = int(scores.argmax())
            else:
                scores = scores / temperature
                if top_k is not None and top_k < len(scores):
                    scores[scores < np.sort(scores)[-top_k]] = -np.inf
                token = int(rng.choice(len(scores), p=softmax(scores)))
            new.append(token)
            if stop_at_eos and token == self.eos_id:
                break
        return new

    def _lm_step(self, tokens: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
        out = self.run("model", tokens=tokens, **state)
        return out["logits"], {name: out[f"next_{name}"] for name in state}

    def generate(self, prompt: str, max_new_tokens: int = 200, temperature: float = 1.0,
                 greedy: bool = False, top_k: int | None = None, seed: int | None = None,
                 stop_at_eos: bool | None = None) -> str:
        """The continuation of ``prompt`` as text (a final ``<eos>`` left out); ``prompt=""``
        starts from the start token. ``stop_at_eos`` None: the model's way."""
        self._need("generation")
        stop = self.meta["stop_at_eos"] if stop_at_eos is None else stop_at_eos
        tokenizer = self.tokenizers["text"]
        prompt_ids = [self.meta["start_id"], *(tokenizer.encode(prompt) if prompt else [])]
        new = self.generate_ids(prompt_ids, max_new_tokens, greedy, temperature, top_k, seed,
                                stop)
        if stop and self.eos_id in new:
            new = new[:new.index(self.eos_id)]
        context = prompt_ids[1:][-8:]
        if not context:
            return self._text(new)
        before, whole = self._text(context), self._text(context + new)
        return whole[len(before):] if whole.startswith(before) else self._text(new)

    def _text(self, ids: list[int]) -> str:
        """Generated ids as text; an ``<eos>`` inside reads as a line break."""
        lines, current = [], []
        for i in ids:
            if i == self.eos_id:
                lines.append(current)
                current = []
            else:
                current.append(i)
        return "\n".join(self.tokenizers["text"].decode(line) for line in [*lines, current])

    # ---------------------------------------------------------------- translation
    def translate_ids(self, source_ids: list[list[int]]) -> list[list[int]]:
        """Greedy target ids (no ``<eos>``) of a batch of source id rows."""
        self._need("translation")
        source, lengths = pad(source_ids, self.pad_id)
        started = self.run("encoder", source=source, lengths=lengths)
        state = {name: started[name] for name in self.meta["state"]}
        memory = {name: started[name] for name in self.meta["memory"]}
        ratio, offset = self.meta["max_length_ratio"], self.meta["max_length_offset"]
        limits = [math.ceil(float(np.float32(n) * np.float32(ratio))) + offset for n in lengths]
        tokens = np.full(len(source_ids), self.bos_id, dtype=np.int64)
        done = np.zeros(len(source_ids), dtype=bool)
        steps = []
        for _ in range(max(limits)):
            out = self.run("decoder", tokens=tokens, **state, **memory)
            state = {name: out[f"next_{name}"] for name in state}
            tokens = np.where(done, self.eos_id, out["logits"].argmax(-1)).astype(np.int64)
            steps.append(tokens)
            done |= tokens == self.eos_id
            if done.all():
                break
        rows = np.stack(steps, 1).tolist()
        found = []
        for row, limit in zip(rows, limits, strict=True):
            row = row[:limit]
            found.append(row[:row.index(self.eos_id)] if self.eos_id in row else row)
        return found

    def translate(self, texts: list[str], batch_size: int = 64) -> list[str]:
        """Greedy translation of each text (an empty text gets an empty translation)."""
        self._need("translation")
        wanted = [i for i, text in enumerate(texts) if text.strip()]
        ids = self.tokenizers["source"].encode_batch([" ".join(texts[i].split())
                                                      for i in wanted])
        ids = [row or [self.unk_id] for row in ids]
        out = [""] * len(texts)
        for rows in batches(ids, batch_size):
            for i, target in zip(rows, self.translate_ids([ids[i] for i in rows]), strict=True):
                out[wanted[i]] = self.tokenizers["target"].decode(target)
        return out
