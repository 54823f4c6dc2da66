"""The project's own exceptions.

Every error a user can cause (a bad file, an unknown user, a missing dataset) is raised
as a subclass of :class:`RecsysError` with a message that says what is wrong and how to
fix it, so the CLI and the app can show it without a traceback.
"""

from __future__ import annotations


class RecsysError(Exception):
    """Base class of every error this library raises on purpose."""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n{hint}" if hint else message)


class DataError(RecsysError, ValueError):
    """Input data is malformed: wrong columns, bad values, inconsistent lengths."""


class FetchError(RecsysError):
    """A dataset could not be obtained from any source."""


class ChecksumError(FetchError):
    """A downloaded file does not match its expected sha256."""


class UnknownIdError(RecsysError, KeyError):
    """A raw user or item id is not in the vocabulary."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]


class ModelError(RecsysError):
    """A model was used wrongly: scored before fitting, bad config, and so on."""


class RunNotFoundError(RecsysError):
    """No saved run has the requested id."""


class TrainingCancelled(RecsysError):
    """Raised inside the trainer when the caller asked to stop."""


class LimitError(RecsysError):
    """A documented limit (file size, rows, memory, a setting's range) would be exceeded; see recsys_core.limits."""


class RunFileError(RecsysError):
    """A saved run's files are damaged, tampered with or point outside the data home."""
