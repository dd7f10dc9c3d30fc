"""The one exception the frontend lets escape."""


class TextValidationError(ValueError):
    """The input text cannot be spoken.

    ``code`` is a short machine-readable reason ("empty", "too_long",
    "no_speakable_text"); ``str(exc)`` is a bilingual message that is safe to show
    to an operator (it never contains the customer's text).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
