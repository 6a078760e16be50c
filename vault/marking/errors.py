"""The one error the marking package raises for input it cannot work with."""


class MarkingError(ValueError):
    """The input cannot be stamped, marked or traced (not a PDF or image we can read, id out of range...).

    The message says what was wrong with the input and is safe to show to the user who supplied it.
    """
