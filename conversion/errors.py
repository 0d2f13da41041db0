"""The errors of converting and exporting, apart from the modules that raise them, so that the
command that reports them need not import torch to name them."""


class VerificationError(Exception):
    """The written folder does not reproduce the original checkpoints."""


class OnnxExportError(Exception):
    """An exported file does not reproduce the torch model closely enough."""
