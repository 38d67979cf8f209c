"""Exception types raised by archcast.

Every error a user can cause derives from :class:`ArchcastError`; the CLI prints its message as one
line and exits non-zero. Messages say what was wrong, the value received and what is allowed.
"""

from __future__ import annotations


class ArchcastError(Exception):
    """Base class of all errors archcast raises on purpose."""


class InvalidInputError(ArchcastError, ValueError):
    """The user gave input that cannot be used (bad file, bad string, bad option)."""


class GraphValidationError(InvalidInputError):
    """A :class:`~archcast.graph.NetGraph` violates an invariant (cycle, bad edge, missing shape...)."""


class UnknownNameError(ArchcastError, KeyError):
    """A registry lookup failed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(ArchcastError):
    """A checkpoint is missing, malformed, or incompatible with this archcast."""


class NotFittedError(ArchcastError, RuntimeError):
    """``predict`` was called on a predictor that was never fitted or loaded."""
