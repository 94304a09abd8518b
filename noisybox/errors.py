"""The one exception type noisybox raises for bad user input.

The CLI turns it into a one-line ``click.ClickException`` (exit code 1, no traceback).
"""

from __future__ import annotations

__all__ = ["NoisyboxError"]


class NoisyboxError(ValueError):
    """Bad input: malformed annotation files, invalid boxes or out-of-range parameters.

    The message is one line of the form "Expected ... but got ..." that names the file and
    the record id where it applies.
    """
