"""The one exception type for mistakes a user can fix (bad path, bad column, bad value).

The command-line entry points print its message as a single line and exit with status 2,
instead of a traceback. Code raises it with a message that names the option, the value
received and what would have been valid.
"""


class NlpseqError(Exception):
    """A user-facing error whose message is shown as one line, without a traceback."""


def first_line(err: BaseException) -> str:
    """One line for a failure: the message of the NlpseqError behind ``err`` (Hydra wraps
    what a constructor raised), else the type and first line of its root cause."""
    while not isinstance(err, NlpseqError) and err.__cause__ is not None:
        err = err.__cause__
    text = str(err).strip()
    line = text.splitlines()[0] if text else ""
    if isinstance(err, NlpseqError):
        return line
    return f"{type(err).__name__}: {line}" if line else type(err).__name__
