"""Token tagging on the task protocol of ``nlpseq.tasks.RecurrentTask``: each token of a
text gets a tag (here "num" for a number, "word" otherwise), from generated texts."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlpseq.data.base import SplitDataModule
from nlpseq.data.batching import PadCollator
from nlpseq.tasks import RecurrentTask

TAGS = ["word", "num"]
WORDS = "the a cat dog sat ran on under mat rug and then".split()


def tags_of(tokens: list[str]) -> list[int]:
    return [int(token.isdigit()) for token in tokens]


class TaggingData(SplitDataModule):
    """Generated texts of words and numbers; a split is a list of token-id lists."""

    task_name = "tagging"

    def __init__(self, *, name: str = "generated", size: int = 240, batch_size: int = 16,
                 eval_batch_size: int = 64, seed: int = 0, num_workers: int = 0) -> None:
        super().__init__(name=name, batch_size=batch_size, eval_batch_size=eval_batch_size,
                         num_workers=num_workers, seed=seed)
        self.size = size
        self.raw: dict[str, list[str]] = {}
        self.encoded: dict[str, list[dict]] = {}

    def load(self, splits=("train", "validation", "test")) -> None:
        rng = random.Random(1234)  # the same texts whatever the shuffling seed
        texts = [" ".join(rng.choice(WORDS) if rng.random() < 0.7 else str(rng.randrange(100))
                          for _ in range(rng.randrange(3, 12))) for _ in range(self.size)]
        cut = [0, self.size * 2 // 3, self.size * 5 // 6, self.size]
        for split, start, end in zip(("train", "validation", "test"), cut[:-1], cut[1:],
                                     strict=True):
            if split in splits:
                self.raw[split] = texts[start:end]

    def load_for_evaluation(self, split: str) -> None:
        self.load((split,))

    def train_texts(self):
        return iter(self.raw["train"])

    def encode(self, tokenizer, splits=None) -> None:
        self.pad_id = tokenizer.pad_id
        for split in splits or self.raw:
            ids = tokenizer.encode_batch(self.raw[split])
            self.encoded[split] = [
                {"input_ids": seq, "tags": tags_of([tokenizer.id_to_token(i) for i in seq]),
                 "index": i} for i, seq in enumerate(ids)]

    def examples(self, split: str) -> list[dict]:
        return self.encoded[split]

    def lengths(self, split: str) -> list[int]:
        return [len(example["input_ids"]) for example in self.encoded[split]]

    def collate(self, split: str) -> TagCollator:
        return TagCollator(self.pad_id)


class TagCollator(PadCollator):
    """Pad the tags with -100 (ignored by the loss) beside the padded tokens."""

    def __call__(self, examples: list[dict]) -> dict[str, Tensor]:
        batch = super().__call__(examples)
        tags = torch.full(batch["tokens"].shape, -100)
        for row, example in enumerate(examples):
            tags[row, :len(example["tags"])] = torch.tensor(example["tags"])
        batch["tags"] = tags
        return batch


class Tagger(nn.Module):
    """Embedding -> encoder (any cell) -> a linear layer per position."""

    def __init__(self, encoder, vocab_size: int, embedding_dim: int, pad_id: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.encoder = encoder(input_size=embedding_dim)
        self.output = nn.Linear(self.encoder.output_size, len(TAGS))

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        return self.output(self.encoder(self.embedding(tokens), lengths).outputs)  # (B, T, 2)


class TaggingTask(RecurrentTask):
    """The whole task: a loss, an evaluation step and its summary, predictions."""

    task_name = "tagging"

    def __init__(self, encoder, optimizer, vocab_size: int, scheduler=None, pad_id: int = 0,
                 embedding_dim: int = 16, monitor: str = "val/acc",
                 monitor_mode: str = "max") -> None:
        super().__init__(optimizer, scheduler)
        self.model = Tagger(encoder, vocab_size, embedding_dim, pad_id)
        self.monitor, self.monitor_mode = monitor, monitor_mode

    def loss(self, batch: dict) -> tuple[Tensor, Tensor]:
        logits = self.model(batch["tokens"], batch["lengths"])
        return F.cross_entropy(logits.flatten(0, 1), batch["tags"].flatten(),
                               reduction="sum"), logits

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        total, _ = self.loss(batch)
        loss = total / (batch["tags"] != -100).sum()
        self.log_train("train/loss", loss, batch_size=len(batch["tokens"]))
        return loss

    def eval_step(self, batch: dict, **options) -> dict:
        total, logits = self.loss(batch)
        real = batch["tags"] != -100
        return {"loss": total, "tokens": real.sum(),
                "correct": ((logits.argmax(-1) == batch["tags"]) & real).sum()}

    def summarize(self, sums: dict, **options) -> dict:
        tokens = max(1, int(sums["tokens"]))
        return {"acc": float(sums["correct"]) / tokens, "loss": float(sums["loss"]) / tokens,
                "tokens": int(sums["tokens"])}

    @torch.no_grad()
    def predict(self, texts: list[str], batch_size: int = 64) -> list[dict]:
        self.eval()
        rows = []
        for text in texts:
            ids = self.tokenizer.encode(text) or [self.tokenizer.unk_id]
            logits = self.model(torch.tensor([ids], device=self.device), torch.tensor([len(ids)]))
            rows.append({"text": text, "tags": [TAGS[i] for i in logits[0].argmax(-1).tolist()]})
        return rows
