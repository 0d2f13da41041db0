"""The typed errors of translation; their messages name the file (and line) or the model."""


class TranslationError(ValueError):
    """Input, model or output that a translation run cannot use; the message says which."""
