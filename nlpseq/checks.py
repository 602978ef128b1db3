"""Value checks shared by every layer: is it an integer (not a bool), a number, a
probability — each failure one line that names the setting and the value given.

Plain Python, so ``encoders/``, ``heads/`` and ``tokenization/`` use them without
knowing of configs. What a config can express (types, choices) is checked earlier, on
the signatures of the classes it names (``nlpseq.config.validate``).
"""

from __future__ import annotations

from nlpseq.errors import NlpseqError


def is_int(value: object) -> bool:
    """An int, and not a bool (``True`` is an int to Python, never a size to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An int or a float, and not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_choice(name: str, value: object, choices: tuple) -> None:
    """One of ``choices`` (for Python callers; a config's choices are checked earlier)."""
    if value not in choices:
        raise NlpseqError(f"Unknown {name} {value!r}; choose one of "
                          f"{', '.join(map(repr, choices))}")


def check_positive_int(name: str, value: object) -> int:
    if not is_int(value) or value < 1:
        raise NlpseqError(f"{name} must be a positive integer; got {value!r}")
    return value


def check_probability(name: str, p: object) -> float:
    """A probability of dropping or smoothing: in [0, 1)."""
    if not is_number(p) or not 0.0 <= p < 1.0:
        raise NlpseqError(f"{name} must be in [0, 1); got {p!r}")
    return float(p)


def check_non_negative(name: str, value: object, what: str) -> float:
    """A strength that 0 turns off (``what``)."""
    if not is_number(value) or value < 0:
        raise NlpseqError(f"{name} must be >= 0 (0 turns {what} off); got {value!r}")
    return float(value)
