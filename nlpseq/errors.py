"""The one exception type for mistakes a user can fix (bad path, bad column, bad value).

The command-line entry points print its message as a single line and exit with status 2,
instead of a traceback. Code raises it with a message that names the option, the value
received and what would have been valid.
"""


class NlpseqError(Exception):
    """A user-facing error whose message is shown as one line, without a traceback."""
