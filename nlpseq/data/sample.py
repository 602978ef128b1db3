"""The embedded samples, written by nlpseq itself: a synthetic movie-review sentiment set and
a small plain-text corpus for language modelling, and German-English sentence pairs for
translation.

They make the default runs work offline on a fresh machine. Sentiment sentences come from
templates with negation ("is not dull") and contrast ("dull , but ... moving") so that word
order matters and a recurrent encoder has something to learn beyond a bag of words. The
corpus is simple, repetitive prose from small word lists, so a tiny character-level
language model learns spelling and sentence shape within a minute.
Regenerate the shipped files with ``python -m nlpseq.data.sample``.
"""

from __future__ import annotations

import random
from pathlib import Path

SAMPLE_DIR = Path(__file__).parent / "sample"
SPLIT_SIZES = {"train": 600, "validation": 150, "test": 150}
SEED = 1234
LM_SPLIT_SIZES = {"train": 480, "validation": 60, "test": 60}  # lines of lm_{split}.txt
LM_SEED = 4321

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


ANIMALS = ["cat", "dog", "bird", "fox", "hen", "cow", "duck", "goat"]
PLACES = ["mat", "hill", "road", "barn", "pond", "wall", "bed", "tree"]
COLOURS = ["red", "big", "small", "old", "little", "brown", "white", "black"]
VERBS = ["sat", "slept", "ran", "stood", "sang", "played", "waited", "jumped"]
PREPOSITIONS = ["on", "by", "near", "under", "behind"]
NAMES = ["Tom", "Ann", "Sam", "Meg", "Bob", "Liz"]
COUNTS = ["one", "two", "three", "four", "five"]


def make_line(rng: random.Random) -> str:
    """Return one line of simple prose for the language-model sample."""
    animal, other = rng.sample(ANIMALS, 2)
    colour, place, verb = rng.choice(COLOURS), rng.choice(PLACES), rng.choice(VERBS)
    where = f"{rng.choice(PREPOSITIONS)} the {place}"
    template = rng.randrange(6)
    if template == 0:
        return f"The {colour} {animal} {verb} {where}."
    if template == 1:
        return f"The {animal} and the {other} {verb} {where}."
    if template == 2:
        return f"{rng.choice(NAMES)} saw a {colour} {animal} {where}."
    if template == 3:
        return f"Where is the {animal}? The {animal} is {where}."
    if template == 4:
        return f"The {animal} was {colour}, and the {other} was {rng.choice(COLOURS)}."
    count = rng.randrange(1, len(COUNTS))
    plural = animal + ("es" if animal.endswith("x") else "s")
    return f"{COUNTS[count].capitalize()} {plural} {verb} {where}, not {COUNTS[count - 1]}."


# English -> German for the translation sample: nouns with their gender (m, f, n).
ANIMALS_DE = {"cat": ("Katze", "f"), "dog": ("Hund", "m"), "bird": ("Vogel", "m"),
              "fox": ("Fuchs", "m"), "hen": ("Henne", "f"), "cow": ("Kuh", "f"),
              "duck": ("Ente", "f"), "horse": ("Pferd", "n")}
PLACES_DE = {"mat": ("Matte", "f"), "hill": ("Hügel", "m"), "road": ("Straße", "f"),
             "barn": ("Scheune", "f"), "pond": ("Teich", "m"), "wall": ("Mauer", "f"),
             "bed": ("Bett", "n"), "tree": ("Baum", "m")}
COLOURS_DE = {"red": "rot", "big": "groß", "small": "klein", "old": "alt", "brown": "braun",
              "white": "weiß", "black": "schwarz", "young": "jung"}
VERBS_DE = {"sat": ("saß", "saßen"), "slept": ("schlief", "schliefen"),
            "ran": ("rannte", "rannten"), "stood": ("stand", "standen"),
            "sang": ("sang", "sangen"), "played": ("spielte", "spielten"),
            "waited": ("wartete", "warteten"), "jumped": ("sprang", "sprangen")}
PREPOSITIONS_DE = {"on": "auf", "near": "neben", "under": "unter", "behind": "hinter"}
ARTICLES_DE = {"nominative": {"m": "Der", "f": "Die", "n": "Das"},
               "accusative": {"m": "den", "f": "die", "n": "das"},
               "dative": {"m": "dem", "f": "der", "n": "dem"}}
TRANSLATION_SPLIT_SIZES = {"train": 1200, "validation": 100, "test": 100}  # sentence pairs
TRANSLATION_SEED = 2468


def make_pair(rng: random.Random) -> tuple[str, str]:
    """Return one (German, English) sentence pair for the translation sample."""
    animal, other = rng.sample(sorted(ANIMALS_DE), 2)
    (tier, gender), (other_de, other_gender) = ANIMALS_DE[animal], ANIMALS_DE[other]
    colour, place, verb = (rng.choice(sorted(COLOURS_DE)), rng.choice(sorted(PLACES_DE)),
                           rng.choice(sorted(VERBS_DE)))
    preposition = rng.choice(sorted(PREPOSITIONS_DE))
    ort, place_gender = PLACES_DE[place]
    nominative, dative = ARTICLES_DE["nominative"], ARTICLES_DE["dative"]
    where_en = f"{preposition} the {place}"
    where_de = f"{PREPOSITIONS_DE[preposition]} {dative[place_gender]} {ort}"
    template = rng.randrange(5)
    if template == 0:
        return (f"{nominative[gender]} {COLOURS_DE[colour]}e {tier} {VERBS_DE[verb][0]} "
                f"{where_de}.", f"The {colour} {animal} {verb} {where_en}.")
    if template == 1:
        return (f"{nominative[gender]} {tier} und {nominative[other_gender].lower()} "
                f"{other_de} {VERBS_DE[verb][1]} {where_de}.",
                f"The {animal} and the {other} {verb} {where_en}.")
    if template == 2:
        name = rng.choice(NAMES)
        ending = "en" if gender == "m" else "e"
        return (f"{name} sah {ARTICLES_DE['accusative'][gender]} {COLOURS_DE[colour]}{ending} "
                f"{tier}.", f"{name} saw the {colour} {animal}.")
    if template == 3:
        return (f"Wo ist {nominative[gender].lower()} {tier}?", f"Where is the {animal}?")
    return (f"{nominative[gender]} {tier} ist {COLOURS_DE[colour]}.",
            f"The {animal} is {colour}.")


def write_sample(directory: Path = SAMPLE_DIR) -> dict[str, Path]:
    """Write the sample files and return them by name (without extension).

    ``sentiment_{split}.tsv`` (header ``sentence<TAB>label``), ``lm_{split}.txt`` (one
    line of prose per line) and ``translation_{split}.de`` / ``.en`` (aligned lines).
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    rng = random.Random(SEED)
    for split, size in SPLIT_SIZES.items():
        rows = [make_example(rng) for _ in range(size)]
        path = directory / f"sentiment_{split}.tsv"
        lines = ["sentence\tlabel"] + [f"{text}\t{label}" for text, label in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths[path.stem] = path
    rng = random.Random(LM_SEED)
    for split, size in LM_SPLIT_SIZES.items():
        path = directory / f"lm_{split}.txt"
        path.write_text("".join(make_line(rng) + "\n" for _ in range(size)), encoding="utf-8")
        paths[path.stem] = path
    rng = random.Random(TRANSLATION_SEED)
    for split, size in TRANSLATION_SPLIT_SIZES.items():
        pairs = [make_pair(rng) for _ in range(size)]
        for column, language in enumerate(("de", "en")):
            path = directory / f"translation_{split}.{language}"
            path.write_text("".join(pair[column] + "\n" for pair in pairs), encoding="utf-8")
            paths[path.name] = path
    return paths


if __name__ == "__main__":
    for stem, path in write_sample().items():
        print(f"{stem}: {path}")
