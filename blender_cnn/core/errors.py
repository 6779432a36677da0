"""The one error type users see: it names where the problem is and what it is."""

from __future__ import annotations


class BlenderCNNError(Exception):
    """A problem with the user's input, stated so the user can fix it.

    ``where`` is the file, layer or setting at fault; the message says what is
    wrong with it. Operators report it as is; anything else is a bug.
    """

    def __init__(self, where: object, message: str) -> None:
        self.where = str(where)
        self.message = message
        super().__init__(f"{self.where}: {message}")


def first_line(error: BaseException) -> str:
    """The first line of any exception's text (its type's name when it has none): what a library's long
    message says first, for one clear line to the user."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
