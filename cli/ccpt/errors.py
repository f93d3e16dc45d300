"""The one error type the core raises; the app prints it as a single clear line."""

from __future__ import annotations


class CcptError(Exception):
    """A failure the user can act on: what went wrong, what to do, and the exit code.

    The core raises it; `ccpt.app` turns it into one red line on stderr (plus the hint)
    and exits with `exit_code`. Anything else is a bug and shows a traceback with --debug.
    """

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"
