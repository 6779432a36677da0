"""The one error type users see: it names where the problem is and what it is."""


class BlenderCNNError(Exception):
    """A problem with the user's input, stated so the user can fix it.

    ``where`` is the file, layer or setting at fault; the message says what is
    wrong with it. Operators report it as is; anything else is a bug.
    """

    def __init__(self, where, message):
        self.where = str(where)
        self.message = message
        super().__init__(f"{self.where}: {message}")
