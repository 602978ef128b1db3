"""The embedded sample: a small synthetic movie-review sentiment set written by nlpseq itself.

It makes the default run work offline on a fresh machine. Sentences come from templates
with negation ("is not dull") and contrast ("dull , but ... moving") so that word order
matters and a recurrent encoder has something to learn beyond a bag of words.
Regenerate the shipped files with ``python -m nlpseq.data.sample``.
"""

from __future__ import annotations

import random
from pathlib import Path

SAMPLE_DIR = Path(__file__).parent / "sample"
SPLIT_SIZES = {"train": 600, "validation": 150, "test": 150}
SEED = 1234

SUBJECTS = [
    "the movie", "this film", "the plot", "the acting", "the soundtrack", "the script",
    "the cast", "the ending", "the story", "the dialogue", "the director 's latest",
    "the second half", "the lead performance", "the camera work", "this sequel",
]
POSITIVE = [
    "wonderful", "moving", "brilliant", "charming", "funny", "gripping", "delightful",
    "beautiful", "clever", "touching", "superb", "warm", "engaging", "fresh", "smart",
]
NEGATIVE = [
    "dull", "boring", "clumsy", "tedious", "awful", "bland", "messy", "predictable",
    "lifeless", "painful", "shallow", "forgettable", "silly", "flat", "tiresome",
]
ADVERBS = ["", "", "truly", "really", "remarkably", "rather", "quite", "surprisingly"]
NOUNS = ["film", "movie", "story", "performance", "ride", "debut", "mess", "experience"]


def _adjective(rng: random.Random, positive: bool) -> str:
    return rng.choice(POSITIVE if positive else NEGATIVE)


def _phrase(rng: random.Random, positive: bool) -> str:
    adverb = rng.choice(ADVERBS)
    adjective = _adjective(rng, positive)
    return f"{adverb} {adjective}".strip()


def make_example(rng: random.Random) -> tuple[str, str]:
    """Return one (sentence, label) pair; label is 'positive' or 'negative'."""
    positive = rng.random() < 0.5
    subject = rng.choice(SUBJECTS)
    template = rng.randrange(6)
    if template == 0:
        text = f"{subject} is {_phrase(rng, positive)} ."
    elif template == 1:
        text = f"{subject} was {_phrase(rng, positive)} and {_adjective(rng, positive)} ."
    elif template == 2:  # negation flips the adjective's polarity
        text = f"{subject} is not {_adjective(rng, not positive)} ."
    elif template == 3:  # contrast: the clause after "but" decides
        other = rng.choice(SUBJECTS)
        text = (f"{other} is {_phrase(rng, not positive)} , but {subject} is "
                f"{_phrase(rng, positive)} .")
    elif template == 4:
        text = f"what a {_adjective(rng, positive)} {rng.choice(NOUNS)} ."
    else:
        text = f"i found {subject} {_phrase(rng, positive)} , to be honest ."
    return " ".join(text.split()), "positive" if positive else "negative"


def write_sample(directory: Path = SAMPLE_DIR) -> dict[str, Path]:
    """Write ``sentiment_{split}.tsv`` files (header ``sentence<TAB>label``) and return them."""
    rng = random.Random(SEED)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, size in SPLIT_SIZES.items():
        rows = [make_example(rng) for _ in range(size)]
        path = directory / f"sentiment_{split}.tsv"
        lines = ["sentence\tlabel"] + [f"{text}\t{label}" for text, label in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths[split] = path
    return paths


if __name__ == "__main__":
    for split, path in write_sample().items():
        print(f"{split}: {path}")
