"""Every error the engine raises on purpose, in one module that imports nothing heavy.

The web app and the workers tell these apart to turn a failure into one sentence for a person
(`dlstudio.jobs.failure_sentence`); they can do so without importing PyTorch.
"""
from __future__ import annotations


class IngestError(ValueError):
    """The upload cannot become a dataset; the message is one sentence a person can act on."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class PackError(ValueError):
    """A pack directory that is missing, incomplete or inconsistent."""


class ImageError(ValueError):
    """An input that is not a usable image; the message is one sentence for a person."""


class ConfigError(ValueError):
    """A config value that is not allowed; `field` names it (dotted for nested keys)."""

    def __init__(self, *, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message

    def as_json(self) -> dict[str, str]:
        """The body of the API's 400 answer."""
        return {"error": self.message, "field": self.field}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one sentence for a person."""


class WeightsNotFound(FileNotFoundError):
    """ImageNet weights that are not on this machine; the message says where to put them."""


class ExportUnavailable(RuntimeError):
    """The ONNX exporter cannot run here; the message says what to install."""


# Errors whose message already says what happened and what to do, fit to show as they are.
SELF_EXPLAINING = (IngestError, ConfigError, CheckpointError, WeightsNotFound, ImageError, ExportUnavailable)
